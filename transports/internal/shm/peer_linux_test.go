package shm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
)

// The test binary re-runs itself as the peer process: with childEnv set,
// TestMain runs runChild instead of the tests. The child is handed the
// listener's endpoint with transports.Endpoint.AttachTo.
const (
	childEnv = "IPCBENCH_SHMLOCK_TEST_CHILD"
	// childLife bounds how long a child lives, should the test that started
	// it fail to kill it.
	childLife = 30 * time.Second
	readyMsg  = "ready"
	// streamBytes is what the "stream" child sends: several rings' worth.
	streamBytes = 5*MinRing + 123
)

// runChild is the peer process. Modes:
//
//	idle    write readyMsg, then wait to be killed
//	locked  take the lock of the ring the parent writes (as if killed in
//	        the middle of an operation), write readyMsg, wait to be killed
//	stream  write streamBytes of the test pattern, Close, exit 0
func runChild(mode string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "shmlock test child (%s): %s\n", mode, fmt.Sprintf(format, args...))
		return 2
	}
	ep, err := transports.InheritedEndpoint()
	if err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), childLife)
	defer cancel()
	nc, err := New(Lock).Dial(ctx, ep)
	for _, f := range ep.Files {
		f.Close()
	}
	if err != nil {
		return fail("dial: %v", err)
	}
	c := nc.(*Conn)
	switch mode {
	case "idle":
		if _, err := c.Write([]byte(readyMsg)); err != nil {
			return fail("write: %v", err)
		}
		<-ctx.Done()
		return 3
	case "locked":
		c.rx.ctl.lock.Store(1)
		if _, err := c.Write([]byte(readyMsg)); err != nil {
			return fail("write: %v", err)
		}
		<-ctx.Done()
		return 3
	case "stream":
		buf := make([]byte, streamBytes)
		fillPattern(buf, 0)
		if _, err := c.Write(buf); err != nil {
			return fail("write: %v", err)
		}
		if err := c.Close(); err != nil {
			return fail("close: %v", err)
		}
		return 0
	}
	return fail("unknown mode")
}

// startChild starts the peer process in mode on channel 0 of l and returns
// the connection it made, accepted. The child is killed and reaped at the
// end of the test.
func startChild(t *testing.T, l *Listener, mode string) (*exec.Cmd, *Conn) {
	t.Helper()
	ep := l.Endpoint()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	if err := ep.AttachTo(cmd); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil { // not reaped by the test
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	a, err := acceptTimeout(l, testTimeout)
	if err != nil {
		t.Fatalf("Accept from child: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return cmd, a.(*Conn)
}

// readReady reads readyMsg from c.
func readReady(t *testing.T, c *Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, len(readyMsg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != readyMsg {
		t.Fatalf("reading %q from child: %q, %v", readyMsg, buf, err)
	}
	c.SetReadDeadline(time.Time{})
}

// TestPeerKilled kills a real peer process with SIGKILL while this side is
// blocked, and checks that the blocked call returns an error wrapping
// transports.ErrPeerGone within 2 s of the kill (the call's deadline).
func TestPeerKilled(t *testing.T) {
	const (
		killAfter = 100 * time.Millisecond
		bound     = 2 * time.Second
	)
	tests := []struct {
		name string
		mode string
		// block runs the call that blocks until the peer dies.
		block func(c *Conn) error
	}{
		{"blocked-read", "idle", func(c *Conn) error {
			_, err := c.Read(make([]byte, 10))
			return err
		}},
		{"blocked-write-ring-full", "idle", func(c *Conn) error {
			_, err := c.Write(make([]byte, 3*MinRing))
			return err
		}},
		{"peer-died-holding-lock", "locked", func(c *Conn) error {
			_, err := c.Write(make([]byte, 10))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listenT(t, transports.Config{BufferSize: MinRing})
			cmd, c := startChild(t, l, tt.mode)
			readReady(t, c)

			var killing atomic.Int64 // UnixNano just before the kill
			timer := time.AfterFunc(killAfter, func() {
				killing.Store(time.Now().UnixNano())
				cmd.Process.Kill()
			})
			defer timer.Stop()
			c.SetDeadline(time.Now().Add(killAfter + bound))
			err := tt.block(c)
			returned := time.Now().UnixNano()
			wantOpErr(t, tt.name, err, transports.ErrPeerGone)
			if at := killing.Load(); at == 0 || returned < at {
				t.Errorf("%s returned before the peer was killed: %v", tt.name, err)
			} else {
				t.Logf("%s returned %v after the kill: %v", tt.name, time.Duration(returned-at), err)
			}
			// The connection stays failed, and closes cleanly.
			if _, err := c.Write([]byte("x")); !errors.Is(err, transports.ErrPeerGone) {
				t.Errorf("Write after peer death: %v, want ErrPeerGone", err)
			}
		})
	}
}

// TestPeerOrderlyClose has a real peer process stream several rings' worth
// of bytes and close: every byte arrives, then io.EOF, and this side's
// Writes fail with EPIPE.
func TestPeerOrderlyClose(t *testing.T) {
	l := listenT(t, transports.Config{BufferSize: MinRing})
	cmd, c := startChild(t, l, "stream")
	c.SetDeadline(time.Now().Add(testTimeout))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(got) != streamBytes {
		t.Fatalf("got %d bytes, want %d", len(got), streamBytes)
	}
	if pos, ok := checkPattern(got, 0); !ok {
		t.Fatalf("byte %d differs", pos)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("Read after EOF: %v, want io.EOF", err)
	}
	_, err = c.Write([]byte("x"))
	wantOpErr(t, "Write to closed peer", err, syscall.EPIPE)
}
