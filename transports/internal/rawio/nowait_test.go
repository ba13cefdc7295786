package rawio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
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
		e.r, e.w, e.setRDL, e.setWDL = r, w, r.SetReadDeadline, w.SetWriteDeadline
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
		e.r, e.w, e.setRDL, e.setWDL = cs[0], cs[1], cs[0].SetReadDeadline, cs[1].SetWriteDeadline
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

// pipesNowait reports whether this kernel takes RWF_NOWAIT on a pipe.
func pipesNowait(t *testing.T) bool {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	_, err := unix.Preadv2(p[0], [][]byte{make([]byte, 1)}, -1, unix.RWF_NOWAIT)
	return err == unix.EAGAIN
}

// blockingChildEnv, when set, makes TestPollIOOnBlockingDescription run its
// checks in this process: the test starts itself again with it set and
// watches from outside, because a call that sleeps in the kernel through a
// direct system call keeps its P, and can stop the whole process, timers
// and the test's own timeout included.
const blockingChildEnv = "RAWIO_TEST_BLOCKING_CHILD"

// TestPollIOOnBlockingDescription: a description that another holder made
// blocking (a duplicate's owner clearing O_NONBLOCK) does not make
// PollReader and PollWriter sleep in the kernel: with nothing to read, or
// no room to write, they park and their deadlines end the wait.
func TestPollIOOnBlockingDescription(t *testing.T) {
	if os.Getenv(blockingChildEnv) != "" {
		checkBlockingDescription(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPollIOOnBlockingDescription$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), blockingChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	switch {
	case ctx.Err() != nil:
		t.Fatalf("a Read or Write slept in the kernel instead of parking in the poller: the child hung for a minute\n%s", out)
	case err != nil:
		t.Fatalf("child: %v\n%s", err, out)
	case !bytes.Contains(out, []byte("--- PASS: TestPollIOOnBlockingDescription/socket")):
		t.Fatalf("the child did not run the checks:\n%s", out)
	}
}

// checkBlockingDescription is TestPollIOOnBlockingDescription's work, in
// the child process.
func checkBlockingDescription(t *testing.T) {
	for _, kind := range []string{"pipe", "socket"} {
		t.Run(kind, func(t *testing.T) {
			if kind == "pipe" && !pipesNowait(t) {
				t.Skip("this kernel refuses RWF_NOWAIT on a pipe: PollReader and PollWriter then make the descriptor's own calls, which a blocking description makes sleep (nowait.go)")
			}
			e := newPollEnds(t, kind)
			for _, fd := range []int{e.rfd, e.wfd} {
				if err := unix.SetNonblock(fd, false); err != nil {
					t.Fatal(err)
				}
			}
			b := make([]byte, 64)
			e.setRDL(time.Now().Add(50 * time.Millisecond))
			if _, err := e.rd.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read with nothing to read = %v, want os.ErrDeadlineExceeded", err)
			}
			e.setRDL(time.Time{})

			big := bytes.Repeat([]byte("ipcbench"), 1<<18) // 2 MiB: more than either buffer holds
			e.setWDL(time.Now().Add(50 * time.Millisecond))
			n, err := e.wr.Write(big)
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
			if kind == "pipe" && pipesNowait(t) && (e.rd.io.old || e.wr.io.old) {
				t.Fatalf("a pipe went over to the earlier calls (reader %v, writer %v) on a kernel that takes RWF_NOWAIT", e.rd.io.old, e.wr.io.old)
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
			if _, err := e.wr.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Write after Close = %v, want net.ErrClosed", err)
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

// TestNowaitFallsBack: a descriptor the kernel refuses RWF_NOWAIT for (a
// pseudo-terminal's master here) goes over to the earlier calls at its
// first read and first write, which then work; and the refusal that makes
// it go over is EOPNOTSUPP or ENOSYS, nothing else.
func TestNowaitFallsBack(t *testing.T) {
	for errno, want := range map[syscall.Errno]bool{unix.EOPNOTSUPP: true, unix.ENOSYS: true, unix.EAGAIN: false, unix.EINVAL: false, unix.EBADF: false} {
		if got := unsupported(errno); got != want {
			t.Errorf("unsupported(%v) = %v, want %v", errno, got, want)
		}
	}

	f, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to try: %v", err)
	}
	defer f.Close()
	if _, err := unix.Preadv2(int(f.Fd()), [][]byte{make([]byte, 1)}, -1, unix.RWF_NOWAIT); err != unix.EOPNOTSUPP {
		t.Skipf("this kernel's pseudo-terminal answers RWF_NOWAIT with %v, not EOPNOTSUPP: nothing to fall back from", err)
	}
	f.Close()
	if f, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0); err != nil { // again: Fd made the first one blocking
		t.Fatal(err)
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rd, wr := NewPollReader(rc), NewPollWriter(rc)
	f.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := rd.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) || !rd.io.old {
		t.Fatalf("Read with nothing to read = %v (gone over: %v), want os.ErrDeadlineExceeded having gone over", err, rd.io.old)
	}
	if n, err := wr.Write([]byte("x")); n != 1 || err != nil || !wr.io.old {
		t.Fatalf("Write = %d, %v (gone over: %v), want 1, nil having gone over", n, err, wr.io.old)
	}
}
