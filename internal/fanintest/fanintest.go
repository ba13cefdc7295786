// Package fanintest runs the fanin workload's per-message work inside one
// test binary, over connections the caller provides: each connection has a
// client goroutine that does what the bench process's fanin loop does
// (stamp, framed write, framed read, clock reads, histogram, check every
// byte) and a server goroutine that does what the peer's echo does (framed
// read, framed write). Both ends run in one process, so a benchmark built
// on it measures the per-message cost of the connections' code and of the
// goroutine hand-offs without a second process and without data crossing
// between CPUs that two processes on two CPUs would move.
//
// bench's BenchmarkHandoffFloor runs it over connections that are a
// buffer handed through channels (the floor of any transport);
// transports/internal/shm's BenchmarkInProcessFanin runs it over
// shared-memory rings.
package fanintest

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/hist"
)

// Pair is one connection of Run: Client is the bench loop's end and Server
// the echo's end. Bytes written to one end are read from the other.
type Pair struct {
	Client, Server io.ReadWriter
}

// Run does b.N round trips of size-byte messages, split as evenly as
// possible over pairs, all connections at once, and reports msg/s
// alongside the benchmark's ns/op (one op is one round trip). The timer
// starts once every goroutine is ready. A failed read, write or check
// fails b and closes both ends of its connection where they are
// io.Closers, so that the other goroutine of the pair stops too.
func Run(b *testing.B, pairs []Pair, size int) {
	cfg := frame.Config{}
	conns := len(pairs)
	per := make([]int, conns)
	for i := range b.N {
		per[i%conns]++
	}
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for i, p := range pairs {
		wg.Add(2)
		go func() { // the peer's echo
			defer wg.Done()
			r, w := frame.NewReader(p.Server, cfg), frame.NewWriter(p.Server, cfg)
			buf := make([]byte, max(size, 64<<10))
			for range per[i] {
				msg, err := r.ReadMsg(buf)
				if err == nil {
					err = w.WriteMsg(msg)
				}
				if err != nil {
					b.Errorf("connection %d, echo: %v", i, err)
					p.close()
					return
				}
			}
		}()
		go func() { // the bench loop
			defer wg.Done()
			w, r := frame.NewWriter(p.Client, cfg), frame.NewReader(p.Client, cfg)
			out, in := make([]byte, size), make([]byte, size)
			frame.Fill(out, uint32(i), 0)
			h := hist.New()
			<-ready
			for seq := range uint64(per[i]) {
				frame.Stamp(out, uint32(i), seq)
				t0 := time.Now()
				if err := w.WriteMsg(out); err != nil {
					b.Errorf("connection %d, write: %v", i, err)
					p.close()
					return
				}
				msg, err := r.ReadMsg(in)
				d := time.Since(t0)
				if err == nil {
					err = frame.Check(msg, uint32(i), seq)
				}
				if err != nil {
					b.Errorf("connection %d, read: %v", i, err)
					p.close()
					return
				}
				h.Record(d.Nanoseconds())
			}
		}()
	}
	b.ResetTimer()
	start := time.Now()
	close(ready)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// close closes both ends that are io.Closers.
func (p Pair) close() {
	for _, end := range []io.ReadWriter{p.Client, p.Server} {
		if c, ok := end.(io.Closer); ok {
			c.Close()
		}
	}
}
