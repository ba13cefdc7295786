package peer

import (
	"bufio"
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// lateDeadlineConn is a net.Conn whose deadline in the past (ctx's end)
// lands late, as it can when the goroutine that sets it is slow to run.
type lateDeadlineConn struct{ net.Conn }

func (c lateDeadlineConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && t.Before(time.Now()) {
		time.Sleep(50 * time.Millisecond)
	}
	return c.Conn.SetReadDeadline(t)
}

func (c lateDeadlineConn) SetDeadline(t time.Time) error {
	if !t.IsZero() && t.Before(time.Now()) {
		time.Sleep(50 * time.Millisecond)
	}
	return c.Conn.SetDeadline(t)
}

// controlPair returns a Control over one end of a unix socket pair, whose
// past deadlines land late, and the other end: what is written there
// waits in the kernel for the Control's reads.
func controlPair(t *testing.T) (*Control, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ends [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "control-pair")
		ends[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { ends[0].Close(); ends[1].Close() })
	c := lateDeadlineConn{ends[0]}
	return &Control{c: c, r: bufio.NewReader(c)}, ends[1]
}

// TestRecvLateCancelDoesNotFailNext: a Recv whose ctx ended as its reply
// arrived returns only once ctx's deadline is set, so the next Recv,
// which clears it, is not failed by it landing later ("i/o timeout"
// broke a Done that followed a cancelled CPU call).
func TestRecvLateCancelDoesNotFailNext(t *testing.T) {
	ct, srv := controlPair(t)
	// The reply is there before Recv reads; ctx has ended, and its
	// deadline lands 50 ms late, after Recv read the reply.
	if _, err := srv.Write([]byte(`{"op":"cpu","id":1}` + "\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var r Reply
	if err := ct.Recv(ctx, &r); err != nil || r.ID != 1 {
		t.Fatalf("first Recv: %+v, %v; want the reply read before the deadline landed", r, err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond) // after any late deadline
		srv.Write([]byte(`{"op":"done","id":2}` + "\n"))
	}()
	if err := ct.Recv(context.Background(), &r); err != nil || r.ID != 2 {
		t.Fatalf("second Recv: %+v, %v; want the done reply", r, err)
	}
}

// TestRecvCutLineGoesOn: a Recv whose ctx ends in the middle of a line
// keeps what it read, and the next Recv returns the whole line (it read
// only the tail, "bad reply line").
func TestRecvCutLineGoesOn(t *testing.T) {
	ct, srv := controlPair(t)
	line := `{"op":"cpu","id":1,"user_ns":5}` + "\n"
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		var r Reply
		errc <- ct.Recv(ctx, &r)
	}()
	srv.Write([]byte(line[:10]))
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("cut Recv: %v, want context.Canceled", err)
	}
	go srv.Write([]byte(line[10:]))
	var r Reply
	if err := ct.Recv(context.Background(), &r); err != nil || r.ID != 1 || r.UserNS != 5 {
		t.Fatalf("next Recv: %+v, %v; want the whole reply", r, err)
	}
}

// TestHandshakeLateCancelClearsDeadline: Handshake clears the deadlines
// only once ctx's has landed, so a connection it hands back does not
// fail its first read with a deadline in the past. The welcome waits in
// the socket before Handshake starts, with ctx already ended: its
// deadline lands 50 ms late, after the welcome was read.
func TestHandshakeLateCancelClearsDeadline(t *testing.T) {
	ct, srv := controlPair(t)
	c := ct.c
	if _, err := srv.Write(appendOK(nil, Welcome{Session: "s1", Tool: "ipcbench test"})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Handshake(ctx, c, Hello{Kind: KindControl}); err != nil {
		t.Fatalf("Handshake with the welcome waiting: %v", err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond) // after any late deadline
		srv.Write([]byte("x"))
	}()
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil {
		t.Fatalf("first read on the handed-back connection: %v", err)
	}
}
