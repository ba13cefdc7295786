package shm

import (
	"fmt"
	"testing"

	"github.com/ipcbench/ipcbench/internal/fanintest"
	"github.com/ipcbench/ipcbench/transports"
)

// BenchmarkInProcessFanin runs the fanin workload's per-message work
// (internal/fanintest) over shm-ring and shm-lock connections whose two
// ends are both in this process: the rings, the lock, the poller and the
// goroutine hand-offs, without a second process and, with -cpu 1, without
// data crossing between CPUs. Set beside bench's BenchmarkHandoffFloor
// (the same work over channels) and ipcbench run -w fanin -placement
// cross-core (two processes on two CPUs), it splits a fanin message's cost
// into the harness and hand-offs, this package's code, and what two
// processes on two CPUs add:
//
//	go test -run '^$' -bench 'HandoffFloor' -cpu 1 ./bench/
//	go test -run '^$' -bench 'InProcessFanin' -cpu 1 ./transports/internal/shm/
func BenchmarkInProcessFanin(b *testing.B) {
	for _, k := range []Kind{Ring, Lock} {
		for _, conns := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/conns=%d", k.Name(), conns), func(b *testing.B) {
				l := listenKindT(b, k, transports.Config{Conns: conns})
				pairs := make([]fanintest.Pair, conns)
				for i := range pairs {
					acc, dia := connectT(b, l, i)
					pairs[i] = fanintest.Pair{Client: dia, Server: acc}
				}
				fanintest.Run(b, pairs, 1024)
			})
		}
	}
}
