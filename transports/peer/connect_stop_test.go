package peer

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/frame"
	unixtr "github.com/ipcbench/ipcbench/transports/unix"
)

// TestConnectLoopStops: a connect job's shutdown ends its loop while it
// waits for the next handoff, as it ends every other job's connections;
// the loop's receive ignored it, and the peer's shutdown waited its whole
// ShutdownTimeout for the job.
func TestConnectLoopStops(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	handoff, bench := os.NewFile(uintptr(fds[0]), "handoff"), os.NewFile(uintptr(fds[1]), "bench")
	defer handoff.Close()
	defer bench.Close() // the bench side stays open: no EOF ends the loop
	cur := &inFlight{fd: int(handoff.Fd())}
	errc := make(chan error, 1)
	go func() {
		var st ConnStats
		errc <- connectLoop(context.Background(), unixtr.New(), handoff, frame.Config{}, Secret{}, &st, cur)
	}()
	time.Sleep(50 * time.Millisecond)
	cur.stop()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("connectLoop after stop: %v, want nil (the handoff socket's end)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connectLoop still waits for a handoff 5 s after the job's shutdown")
	}
	cur.end()
	cur.stop() // after the loop: does nothing
}
