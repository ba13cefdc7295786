package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pollEnds is a connected pair of descriptors Go's poller manages, with
// a PollReader on one and a PollWriter on the other.
type pollEnds struct {
	kind   string
	r, w   io.Closer
	rd     *PollReader
	wr     *PollWriter
	rfd    int // the descriptors, for fcntl
	wfd    int
	setRDL func(time.Time) error
	setWDL func(time.Time) error
	closed error // the error a closed end's calls wrap
}

// newPollEnds makes a pipe ("pipe") or a Unix socket pair ("socket"),
// both ends closed when the test ends.
func newPollEnds(t *testing.T, kind string) *pollEnds {
	t.Helper()
	e := &pollEnds{kind: kind}
	var rrc, wrc syscall.RawConn
	switch kind {
	case "pipe":
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		e.r, e.w, e.setRDL, e.setWDL, e.closed = r, w, r.SetReadDeadline, w.SetWriteDeadline, os.ErrClosed
		rrc, _ = r.SyscallConn()
		wrc, _ = w.SyscallConn()
	case "socket":
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		var cs [2]*net.UnixConn
		for i, fd := range fds {
			f := os.NewFile(uintptr(fd), "socketpair")
			c, err := net.FileConn(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			cs[i] = c.(*net.UnixConn)
		}
		e.r, e.w, e.setRDL, e.setWDL, e.closed = cs[0], cs[1], cs[0].SetReadDeadline, cs[1].SetWriteDeadline, net.ErrClosed
		rrc, _ = cs[0].SyscallConn()
		wrc, _ = cs[1].SyscallConn()
	}
	t.Cleanup(func() { e.r.Close(); e.w.Close() })
	rrc.Control(func(fd uintptr) { e.rfd = int(fd) })
	wrc.Control(func(fd uintptr) { e.wfd = int(fd) })
	e.rd, e.wr = NewPollReader(rrc), NewPollWriter(wrc)
	if e.rd.io.sock != (kind == "socket") || e.wr.io.sock != (kind == "socket") {
		t.Fatalf("%s: taken for a socket: reader %v, writer %v", kind, e.rd.io.sock, e.wr.io.sock)
	}
	return e
}

// within runs f and fails the test if it has not returned after a while
// (a call that slept in the kernel instead of parking), calling unstick to
// free it first.
func within(t *testing.T, what string, unstick func(), f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		unstick()
		<-done
		t.Fatalf("%s slept in the kernel instead of parking in the poller", what)
	}
}

// TestPollIOOnBlockingDescription: a description that another holder made
// blocking (a duplicate's owner clearing O_NONBLOCK) does not make
// PollReader and PollWriter sleep in the kernel: with nothing to read, or
// no room to write, they park and their deadlines end the wait.
func TestPollIOOnBlockingDescription(t *testing.T) {
	for _, kind := range []string{"pipe", "socket"} {
		t.Run(kind, func(t *testing.T) {
			e := newPollEnds(t, kind)
			for _, fd := range []int{e.rfd, e.wfd} {
				if err := unix.SetNonblock(fd, false); err != nil {
					t.Fatal(err)
				}
			}
			b := make([]byte, 64)
			e.setRDL(time.Now().Add(50 * time.Millisecond))
			var err error
			within(t, "Read", func() { unix.Write(e.wfd, []byte("x")) }, func() { _, err = e.rd.Read(b) })
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read with nothing to read = %v, want os.ErrDeadlineExceeded", err)
			}
			e.setRDL(time.Time{})

			big := bytes.Repeat([]byte("ipcbench"), 1<<18) // 2 MiB: more than either buffer holds
			e.setWDL(time.Now().Add(50 * time.Millisecond))
			var n int
			within(t, "Write", func() { go unix.Read(e.rfd, make([]byte, len(big))) }, func() { n, err = e.wr.Write(big) })
			if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n >= len(big) {
				t.Fatalf("Write of %d bytes into a full %s = %d, %v; want some bytes and os.ErrDeadlineExceeded", len(big), kind, n, err)
			}
			if m, err := e.rd.Read(b); m == 0 || err != nil || !bytes.Equal(b[:m], big[:m]) {
				t.Fatalf("Read after the Write = %d, %v (%q)", m, err, b[:m])
			}
		})
	}
}

// TestPollWriterErrors checks the errors WriteBuffers and Write promise,
// and that what they write arrives whole and in order.
func TestPollWriterErrors(t *testing.T) {
	for _, kind := range []string{"pipe", "socket"} {
		t.Run(kind, func(t *testing.T) {
			e := newPollEnds(t, kind)
			v := net.Buffers{[]byte("ab"), nil, []byte("cde")}
			if n, err := e.wr.WriteBuffers(&v); n != 5 || err != nil || len(v) != 0 {
				t.Fatalf("WriteBuffers = %d, %v, %d buffers left; want 5, nil, 0", n, err, len(v))
			}
			if n, err := e.wr.Write([]byte("fg")); n != 2 || err != nil {
				t.Fatalf("Write = %d, %v; want 2, nil", n, err)
			}
			if n, err := e.wr.Write(nil); n != 0 || err != nil {
				t.Fatalf("empty Write = %d, %v; want 0, nil", n, err)
			}
			b := make([]byte, 16)
			if n, err := io.ReadAtLeast(e.rd, b, 7); n != 7 || err != nil || string(b[:7]) != "abcdefg" {
				t.Fatalf("read back %d, %v (%q); want \"abcdefg\"", n, err, b[:n])
			}

			e.setWDL(time.Now().Add(-time.Second))
			if _, err := e.wr.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write past the deadline = %v, want os.ErrDeadlineExceeded", err)
			}
			e.setWDL(time.Time{})

			e.r.Close()
			_, err := e.wr.Write([]byte("x"))
			var se *os.SyscallError
			if !errors.As(err, &se) || !errors.Is(err, syscall.EPIPE) || se.Syscall != "write" {
				t.Fatalf("Write after the reader closed = %v, want an *os.SyscallError of \"write\" wrapping EPIPE", err)
			}
			v = net.Buffers{[]byte("x")}
			if _, err := e.wr.WriteBuffers(&v); !errors.As(err, &se) || se.Syscall != "writev" {
				t.Fatalf("WriteBuffers after the reader closed = %v, want an *os.SyscallError of \"writev\"", err)
			}

			e.w.Close()
			if _, err := e.wr.Write([]byte("x")); !errors.Is(err, e.closed) {
				t.Fatalf("Write after Close = %v, want %v", err, e.closed)
			}
		})
	}
}

// TestPollIOWithoutNowait: where the kernel refuses RWF_NOWAIT, a pipe is
// read and written the earlier way, and still parks while it cannot.
func TestPollIOWithoutNowait(t *testing.T) {
	e := newPollEnds(t, "pipe")
	e.rd.io.old = true
	e.wr.io.old = true
	b := make([]byte, 8)
	e.setRDL(time.Now().Add(20 * time.Millisecond))
	if _, err := e.rd.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with nothing to read = %v, want os.ErrDeadlineExceeded", err)
	}
	e.setRDL(time.Time{})
	if n, err := e.wr.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v; want 3, nil", n, err)
	}
	if n, err := e.rd.Read(b); n != 3 || err != nil || string(b[:3]) != "abc" {
		t.Fatalf("Read = %d, %v (%q); want 3, nil (\"abc\")", n, err, b[:n])
	}
}

// TestNowaitFallsBack: the refusal that switches a descriptor to the
// earlier way is EOPNOTSUPP or ENOSYS, nothing else.
func TestNowaitFallsBack(t *testing.T) {
	for errno, want := range map[syscall.Errno]bool{unix.EOPNOTSUPP: true, unix.ENOSYS: true, unix.EAGAIN: false, unix.EINVAL: false, unix.EBADF: false} {
		if got := unsupported(errno); got != want {
			t.Errorf("unsupported(%v) = %v, want %v", errno, got, want)
		}
	}
}
