package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pollPipe returns a PollReader on the read end of a new pipe (Go's
// poller manages it) and the write end, both closed when the test ends.
func pollPipe(t *testing.T) (*PollReader, *os.File, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return NewPollReader(rc), r, w
}

// countYields counts the yields PollReaders make until the test ends.
func countYields(t *testing.T) *atomic.Int32 {
	var n atomic.Int32
	yieldHook = func() { n.Add(1) }
	t.Cleanup(func() { yieldHook = nil })
	return &n
}

// awaitParked waits until n PollReader reads are parked and counted.
func awaitParked(t *testing.T, n int) {
	t.Helper()
	for i := 0; ParkedReads() != n; i++ {
		if i == 10000 {
			t.Fatalf("parked reads = %d, want %d", ParkedReads(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// read starts a Read of p and returns where its result arrives.
func read(p *PollReader, size int) chan error {
	done := make(chan error, 1)
	go func() {
		b := make([]byte, size)
		n, err := p.Read(b)
		if err == nil && n == 0 {
			err = errors.New("no bytes and no error")
		}
		done <- err
	}()
	return done
}

// TestPollReaderYieldsOnceThenParks: a sole reader that finds nothing
// yields once, reads again, then parks and is counted; data wakes it and
// the count falls back. A parked read does not keep an FD's wait from
// sleeping directly.
func TestPollReaderYieldsOnceThenParks(t *testing.T) {
	yields := countYields(t)
	p, _, w := pollPipe(t)
	done := read(p, 8)
	awaitParked(t, 1)
	if n := yields.Load(); n != 1 {
		t.Fatalf("a sole reader yielded %d times before it parked, want 1", n)
	}
	if !soleWaiter() {
		t.Fatal("a parked PollReader read keeps an FD's wait from sleeping directly")
	}
	endWait()
	w.Write([]byte("x"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	awaitParked(t, 0)
}

// TestPollReaderNoYieldWhileOthersWait: with another reader parked, a
// reader that finds nothing parks at once.
func TestPollReaderNoYieldWhileOthersWait(t *testing.T) {
	yields := countYields(t)
	p1, _, w1 := pollPipe(t)
	p2, _, w2 := pollPipe(t)
	done1 := read(p1, 8)
	awaitParked(t, 1)
	done2 := read(p2, 8)
	awaitParked(t, 2)
	if n := yields.Load(); n != 1 {
		t.Fatalf("%d yields, want 1: the second reader yielded while the first waited", n)
	}
	w1.Write([]byte("x"))
	w2.Write([]byte("y"))
	for _, d := range []chan error{done1, done2} {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	awaitParked(t, 0)
}

// TestPollReaderErrors checks the errors Read promises, and that data
// already there is read without a yield.
func TestPollReaderErrors(t *testing.T) {
	yields := countYields(t)
	p, r, w := pollPipe(t)
	b := make([]byte, 8)

	if n, err := p.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty Read = %d, %v; want 0, nil", n, err)
	}
	w.Write([]byte("abc"))
	if n, err := p.Read(b); n != 3 || err != nil || string(b[:3]) != "abc" {
		t.Fatalf("Read = %d, %v (%q); want 3, nil (\"abc\")", n, err, b[:n])
	}
	if n := yields.Load(); n != 0 {
		t.Fatalf("a Read with data there yielded %d times", n)
	}

	r.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := p.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	if n, err := p.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty Read past the deadline = %d, %v; want 0, nil (as the file's own Read)", n, err)
	}
	r.SetReadDeadline(time.Time{})

	done := read(p, 8)
	awaitParked(t, 1)
	r.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read during Close = %v, want net.ErrClosed", err)
	}
	if _, err := p.Read(nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("empty Read after Close = %v, want net.ErrClosed", err)
	}
	awaitParked(t, 0)

	p2, _, w2 := pollPipe(t)
	w2.Close()
	if _, err := p2.Read(b); err != io.EOF {
		t.Fatalf("Read after the writer closed = %v, want io.EOF itself", err)
	}
}

// TestPollReaderSyscallError: the kernel's own errors come back as
// *os.SyscallError (here ECONNRESET: a Unix socket's peer closed with
// unread data).
func TestPollReaderSyscallError(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Write(fds[0], []byte("x")) // lands in fds[1]'s queue, never read
	f := os.NewFile(uintptr(fds[0]), "a")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[1])
		t.Fatal(err)
	}
	defer c.Close()
	unix.Close(fds[1])
	rc, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var se *os.SyscallError
	if _, err := NewPollReader(rc).Read(make([]byte, 8)); !errors.As(err, &se) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read = %v, want an *os.SyscallError of ECONNRESET", err)
	}
}

// TestPollReaderBackground: a background reader's parked read is not
// counted and does not keep another reader from yielding.
func TestPollReaderBackground(t *testing.T) {
	yields := countYields(t)
	bg, _, wbg := pollPipe(t)
	bg.SetBackground()
	doneBg := read(bg, 8)
	for i := 0; yields.Load() != 1; i++ { // the background read yields as a sole wait
		if i == 10000 {
			t.Fatalf("%d yields, want 1", yields.Load())
		}
		time.Sleep(time.Millisecond)
	}
	p, _, w := pollPipe(t)
	done := read(p, 8)
	awaitParked(t, 1)
	if n := yields.Load(); n != 2 {
		t.Fatalf("%d yields, want 2: a parked background read kept the other reader from yielding", n)
	}
	w.Write([]byte("x"))
	wbg.Write([]byte("y"))
	for _, d := range []chan error{done, doneBg} {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	awaitParked(t, 0)
}

// TestPollReaderNotPollable: a descriptor the poller does not manage is
// reported as such, not as closed.
func TestPollReaderNotPollable(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	r := os.NewFile(uintptr(p[0]), "r") // blocking: the poller does not take it
	defer r.Close()
	if err := unix.SetNonblock(p[0], true); err != nil {
		t.Fatal(err)
	}
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPollReader(rc).Read(make([]byte, 8)); err == nil || errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read of an open descriptor the poller does not manage = %v, want its own error, not net.ErrClosed", err)
	}
}
