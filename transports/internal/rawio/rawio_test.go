package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipeFD returns an FD made by New on the read end of a new pipe and the
// write end.
func pipeFD(t *testing.T) (*FD, *os.File) {
	t.Helper()
	return pipeWith(t, New)
}

// pipeWith returns an FD made by newFD on the read end of a new pipe and
// the write end, both closed when the test ends. After a failure a byte
// is written first: a read a failed wake-up left asleep then ends, so
// Close returns.
func pipeWith(t *testing.T, newFD func(int) (*FD, error)) (*FD, *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, err := newFD(p[0])
	if err != nil {
		t.Fatal(err)
	}
	w := os.NewFile(uintptr(p[1]), "pipe-w")
	t.Cleanup(func() {
		if t.Failed() {
			w.Write([]byte{0})
		}
		r.Close()
		w.Close()
	})
	return r, w
}

// TestReadPollsFirstAfterWaiting walks Read through both of its modes: a
// Read that had to wait and got a short read makes the next one poll
// first; in that mode data already there, a deadline and Close all behave
// as in the read-first mode; a read that fills its buffer switches back.
func TestReadPollsFirstAfterWaiting(t *testing.T) {
	r, w := pipeFD(t)
	buf := make([]byte, 8)

	// Nothing there: Read waits, then gets a short read. (On a loaded
	// machine the Read may start after the write and not wait: retry.)
	for i := 0; !r.readWaited.Load(); i++ {
		if i == 20 {
			t.Fatal("after waiting for a short read the next Read does not poll first")
		}
		go func() {
			time.Sleep(20 * time.Millisecond)
			w.Write([]byte("abc"))
		}()
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != "abc" {
			t.Fatalf("Read = %q, %v", buf[:n], err)
		}
	}

	// Poll-first mode, data already there: returned at once.
	w.Write([]byte("de"))
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "de" {
		t.Fatalf("poll-first Read with data waiting = %q, %v", buf[:n], err)
	}
	if !r.readWaited.Load() {
		t.Fatal("a short read in poll-first mode left it")
	}

	// Poll-first mode, a deadline.
	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("poll-first Read past its deadline = %v", err)
	}
	r.SetReadDeadline(time.Time{})

	// A read that fills its buffer: back to reading first.
	w.Write([]byte("12345678"))
	if n, err := r.Read(buf); err != nil || n != len(buf) {
		t.Fatalf("full Read = %d, %v", n, err)
	}
	if r.readWaited.Load() {
		t.Fatal("a read that filled its buffer did not switch back to reading first")
	}

	// Close wakes a Read waiting in poll-first mode.
	r.readWaited.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(buf)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read woken by Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake a poll-first Read")
	}
}

// socketFD returns an FD (NewSocket) on one end of a new Unix stream
// socket pair and the other end.
func socketFD(t *testing.T) (*FD, *os.File) {
	t.Helper()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSocket(p[0])
	if err != nil {
		t.Fatal(err)
	}
	o := os.NewFile(uintptr(p[1]), "peer")
	t.Cleanup(func() { s.Close(); o.Close() })
	return s, o
}

// TestSocketReadsSleepInRecv checks the socket FD: its descriptor is
// blocking with receive and send timeouts, a Read waits for data that
// comes later (past the timeout too), a deadline closer than the timeout
// is kept, a Read sleeping in recv is woken by Close, the end of the
// stream is io.EOF, and a write deadline ends a Write to a full socket.
func TestSocketReadsSleepInRecv(t *testing.T) {
	s, o := socketFD(t)
	if fl, err := unix.FcntlInt(uintptr(s.fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Fatalf("flags %#x, %v: want a blocking descriptor", fl, err)
	}
	for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if tv, err := unix.GetsockoptTimeval(s.fd, unix.SOL_SOCKET, opt); err != nil || tv.Nano() == 0 {
			t.Fatalf("socket option %d = %v, %v: want a timeout", opt, tv, err)
		}
	}
	buf := make([]byte, 8)
	for _, delay := range []time.Duration{0, directSlice / 2, 2 * sockSleepMax} {
		go func() {
			time.Sleep(delay)
			o.Write([]byte("hi"))
		}()
		if n, err := s.Read(buf); err != nil || string(buf[:n]) != "hi" {
			t.Fatalf("Read with data %v later = %q, %v", delay, buf[:n], err)
		}
	}

	s.SetReadDeadline(time.Now().Add(directSlice / 4))
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with a deadline closer than the receive timeout = %v", err)
	}
	s.SetReadDeadline(time.Time{})

	// A full socket: the write deadline ends the Write.
	s.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	big := make([]byte, 1<<20)
	var err error
	for i := 0; i < 64 && err == nil; i++ {
		_, err = s.Write(big)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write to a full socket = %v, want the deadline", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.Read(buf)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read woken by Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake a Read sleeping in recv")
	}

	s2, o2 := socketFD(t)
	o2.Close()
	if _, err := s2.Read(buf); err != io.EOF {
		t.Fatalf("Read after the peer closed = %v, want io.EOF", err)
	}
}

// TestSocketWritesSleepInSend checks that a Write to a full socket sleeps
// in send(2), as a C program's blocking write does, instead of failing
// with EAGAIN and polling; that such Writes deliver every byte in order
// while the reader drains the socket slowly, through Write and through
// WriteBuffers (with more buffers than one sendmsg takes, and empty ones);
// and that Close ends a Write waiting on a full socket.
func TestSocketWritesSleepInSend(t *testing.T) {
	// The watcher must run while the writer's thread sleeps in send
	// holding its P.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))

	// Nobody reads: each Write fills the socket, then sleeps in send(2)
	// (up to sockSleepMax) before it polls until its deadline, which is
	// far enough for the send to sleep.
	s, _ := socketFD(t)
	seen := make(chan struct{})
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		big := make([]byte, 1<<20)
		for {
			select {
			case <-seen:
				return
			default:
			}
			s.SetWriteDeadline(time.Now().Add(2 * sockSleepMax))
			if _, err := s.Write(big); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Write to a full socket = %v, want the deadline", err)
				return
			}
		}
	}()
	ok := asleepIn(unix.SYS_SENDTO, s.fd, 0)
	close(seen)
	<-writing
	if !ok {
		t.Fatal("no thread seen asleep in send(2) on a full socket within 10 s")
	}

	// A slow reader: small reads with pauses, so the Write fills the
	// socket and sleeps again and again, part by part.
	s, o := socketFD(t)
	const size = 4 << 20 // many times the socket's buffer and directSendMax
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i*7 + i>>11)
	}
	type result struct {
		n   int
		err error
	}
	wrote := make(chan result, 1)
	go func() {
		n, err := s.Write(msg)
		wrote <- result{n, err}
	}()
	if got := readSlowly(t, o, size); !bytes.Equal(got, msg) {
		t.Fatal("the bytes read differ from those written")
	}
	if r := <-wrote; r.err != nil || r.n != size {
		t.Fatalf("Write = %d, %v; want %d, nil", r.n, r.err, size)
	}

	// The same through WriteBuffers, in more buffers than one sendmsg
	// takes (maxIovecs), with empty ones among them.
	v := net.Buffers{nil}
	for off := 0; off < size; off += 100 << 10 {
		v = append(v, msg[off:min(off+100<<10, size)], []byte{})
	}
	go func() {
		n, err := s.WriteBuffers(&v)
		wrote <- result{int(n), err}
	}()
	if got := readSlowly(t, o, size); !bytes.Equal(got, msg) {
		t.Fatal("WriteBuffers: the bytes read differ from those written")
	}
	if r := <-wrote; r.err != nil || r.n != size || len(v) != 0 {
		t.Fatalf("WriteBuffers = %d, %v, %d buffers left; want %d, nil, none", r.n, r.err, len(v), size)
	}

	// Close ends a Write waiting on a full socket.
	go func() {
		n, err := s.Write(msg)
		wrote <- result{n, err}
	}()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	select {
	case r := <-wrote:
		if !errors.Is(r.err, net.ErrClosed) || r.n >= size {
			t.Fatalf("Write ended by Close = %d, %v; want a short count and net.ErrClosed", r.n, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a Write waiting on a full socket")
	}
}

// readSlowly reads size bytes from o in 64 KiB reads, pausing after
// every 512 KiB so that the writer finds the socket full again and again.
func readSlowly(t *testing.T, o *os.File, size int) []byte {
	t.Helper()
	got := make([]byte, 0, size)
	buf := make([]byte, 64<<10)
	for len(got) < size {
		n, err := o.Read(buf)
		if err != nil {
			t.Fatalf("reading after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
		if len(got)%(512<<10) < n {
			time.Sleep(2 * directSlice)
		}
	}
	return got
}

// TestIovecsLimit checks the cut of a vectored send that may sleep: no
// more than the limit, the last buffer cut short, empty buffers skipped.
func TestIovecsLimit(t *testing.T) {
	v := net.Buffers{make([]byte, 10), nil, make([]byte, 20), make([]byte, 30)}
	var iov [maxIovecs]unix.Iovec
	for _, tc := range []struct {
		limit, k int
		bytes    int64
	}{{0, 3, 60}, {100, 3, 60}, {60, 3, 60}, {25, 2, 25}, {10, 1, 10}, {5, 1, 5}} {
		k, n := iovecs(&iov, v, tc.limit)
		if k != tc.k || n != tc.bytes {
			t.Errorf("limit %d: %d buffers of %d bytes, want %d of %d", tc.limit, k, n, tc.k, tc.bytes)
			continue
		}
		var sum int64
		for _, e := range iov[:k] {
			sum += int64(e.Len)
		}
		if sum != n {
			t.Errorf("limit %d: the buffers' lengths add up to %d, not %d", tc.limit, sum, n)
		}
	}
}

// TestOnlyASoleWaiterSleepsDirectly checks the rule that keeps a direct
// sleep (which holds the P) from stalling the other waiters of the process.
func TestOnlyASoleWaiterSleepsDirectly(t *testing.T) {
	if !soleWaiter() {
		t.Fatal("the first waiter is not alone")
	}
	if soleWaiter() {
		t.Fatal("a second waiter may sleep directly while the first sleeps")
	}
	endWait()
	if !soleWaiter() {
		t.Fatal("after the first waiter ended, the next is not alone")
	}
	endWait()
	if n := waiters.Load(); n != 0 {
		t.Fatalf("%d waiters left", n)
	}
}

// TestSendState walks a socket write's states: a short send marks the
// socket full (the next send may sleep); a short send that could sleep
// timed out, so the call polls from then on; a whole send clears full.
func TestSendState(t *testing.T) {
	sock := &FD{sock: true}
	var st sendState
	st.sent(sock, false, true)
	if !st.full || st.slept {
		t.Fatalf("after a short send that could not sleep: %+v, want full, not slept", st)
	}
	st.sent(sock, true, false)
	if st.full || st.slept {
		t.Fatalf("after a whole send that could sleep: %+v, want neither", st)
	}
	st.sent(sock, true, true)
	if !st.full || !st.slept {
		t.Fatalf("after a short send that could sleep: %+v, want full and slept", st)
	}
	var pipe sendState
	pipe.sent(&FD{}, false, true)
	if pipe.full || pipe.slept {
		t.Fatalf("a pipe's short write: %+v, want neither (only sockets sleep in send)", pipe)
	}
}
