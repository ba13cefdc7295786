package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipeReader is pipeWith(t, NewPipeReader), skipping the test where the
// process cannot see its threads (then NewPipeReader is New).
func pipeReader(t *testing.T) (*FD, *os.File) {
	t.Helper()
	r, w := pipeWith(t, NewPipeReader)
	if !r.blk {
		t.Skip("no " + taskDir + ": NewPipeReader is New here")
	}
	return r, w
}

// asleepInRead waits until a thread of this process is blocked in read(2)
// on fd, and fails the test if none is within 10 s.
func asleepInRead(t *testing.T, fd int) {
	t.Helper()
	if !asleepIn(unix.SYS_READ, fd, time.Millisecond) {
		t.Fatalf("no thread asleep in read(2) on descriptor %d after 10 s", fd)
	}
}

// asleepIn reports whether a thread of this process is seen blocked in
// system call nr on fd within 10 s, looking every interval.
func asleepIn(nr, fd int, interval time.Duration) bool {
	want := []byte(strconv.Itoa(nr) + " 0x" + strconv.FormatUint(uint64(fd), 16) + " ")
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(interval) {
		names, err := os.ReadDir(taskDir)
		if err != nil {
			return false
		}
		for _, e := range names {
			if sc, err := os.ReadFile(taskDir + "/" + e.Name() + "/syscall"); err == nil && bytes.HasPrefix(sc, want) {
				return true
			}
		}
	}
	return false
}

// readAsync starts a Read of r and returns where its error arrives.
func readAsync(r *FD, buf []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(buf)
		done <- err
	}()
	return done
}

// awaitErr waits up to 10 s for a Read's error and checks it is want.
func awaitErr(t *testing.T, done <-chan error, want error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, want) {
			t.Fatalf("%s: Read = %v, want %v", what, err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not wake a Read asleep in read(2) within 10 s", what)
	}
}

// TestPipeReaderSleepsInRead checks NewPipeReader's reads: the
// descriptor is blocking, a Read without a deadline sleeps in read(2) and
// returns the data that comes, and the end of the stream is io.EOF.
func TestPipeReaderSleepsInRead(t *testing.T) {
	r, w := pipeReader(t)
	if fl, err := unix.FcntlInt(uintptr(r.fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Fatalf("flags %#x, %v: want a blocking descriptor", fl, err)
	}
	buf := make([]byte, 8)
	done := make(chan string, 1)
	go func() {
		n, err := r.Read(buf)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- string(buf[:n])
	}()
	asleepInRead(t, r.fd)
	w.Write([]byte("hi"))
	if got := <-done; got != "hi" {
		t.Fatalf("Read = %q, want %q", got, "hi")
	}
	w.Close()
	if _, err := r.Read(buf); err != io.EOF {
		t.Fatalf("Read after the writer closed = %v, want io.EOF", err)
	}
}

// TestPipeReaderWakes checks that what must end a Read asleep in read(2)
// does: Close, and a deadline set while it sleeps (in the past, now, or
// later); and that once the deadline is gone, Reads sleep in read(2)
// again and get their data.
func TestPipeReaderWakes(t *testing.T) {
	buf := make([]byte, 8)
	for _, c := range []struct {
		name string
		at   time.Duration // deadline, from the moment it is set
	}{{"past deadline", -time.Second}, {"present deadline", 0}, {"future deadline", 30 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			r, w := pipeReader(t)
			done := readAsync(r, buf)
			asleepInRead(t, r.fd)
			r.SetReadDeadline(time.Now().Add(c.at))
			awaitErr(t, done, os.ErrDeadlineExceeded, "SetReadDeadline")

			r.SetReadDeadline(time.Time{})
			got := make(chan string, 1)
			go func() {
				n, _ := r.Read(buf)
				got <- string(buf[:n])
			}()
			asleepInRead(t, r.fd)
			w.Write([]byte("again"))
			if s := <-got; s != "again" {
				t.Fatalf("Read after the deadline was removed = %q", s)
			}
		})
	}
	t.Run("close", func(t *testing.T) {
		r, _ := pipeReader(t)
		done := readAsync(r, buf)
		asleepInRead(t, r.fd)
		closed := make(chan error, 1)
		go func() { closed <- r.Close() }()
		awaitErr(t, done, net.ErrClosed, "Close")
		if err := <-closed; err != nil {
			t.Fatalf("Close = %v", err)
		}
		if n := r.sleeping(); n != 0 {
			t.Fatalf("%d reads still counted under way after Close", n)
		}
	})
}

// TestPipeReaderDeadlineBeforeRead checks the polling side of a pipe
// reader: with a deadline set before the Read, the descriptor is
// non-blocking, data that comes in time is read, and the deadline ends
// the wait.
func TestPipeReaderDeadlineBeforeRead(t *testing.T) {
	r, w := pipeReader(t)
	buf := make([]byte, 8)
	r.SetReadDeadline(time.Now().Add(time.Hour))
	go func() {
		time.Sleep(5 * time.Millisecond)
		w.Write([]byte("ok"))
	}()
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("Read with a distant deadline = %q, %v", buf[:n], err)
	}
	if fl, err := unix.FcntlInt(uintptr(r.fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK == 0 {
		t.Fatalf("flags %#x, %v: want non-blocking while a deadline is set", fl, err)
	}
	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline = %v", err)
	}
}

// TestPipeReaderWakesAtOnce ends Reads the moment they start, by Close or
// by a deadline, many times: the wake-up must reach a Read at any point on
// its way into read(2), before it is asleep there too.
func TestPipeReaderWakesAtOnce(t *testing.T) {
	buf := make([]byte, 8)
	for i := range 300 {
		r, _ := pipeReader(t)
		done := readAsync(r, buf)
		if i%2 == 0 {
			r.SetReadDeadline(time.Now())
			awaitErr(t, done, os.ErrDeadlineExceeded, "SetReadDeadline at once")
		} else {
			r.Close()
			awaitErr(t, done, net.ErrClosed, "Close at once")
		}
	}
}

// TestPipeReaderConcurrentReads runs two Reads at once while the deadline
// comes and goes: whichever way each Read goes, no Read may stay asleep,
// and Close ends both.
func TestPipeReaderConcurrentReads(t *testing.T) {
	r, w := pipeReader(t)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			b := make([]byte, 1)
			for {
				if _, err := r.Read(b); errors.Is(err, net.ErrClosed) {
					errs <- nil
					return
				} else if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 2000 {
		if i%2 == 0 {
			r.SetReadDeadline(time.Now().Add(time.Duration(i%7) * time.Microsecond))
		} else {
			r.SetReadDeadline(time.Time{})
		}
		if i%100 == 0 {
			w.Write([]byte{1})
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a Read did not return within 10 s of Close")
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
}

// TestPipeReaderCloseWhileReadsGoOn: Close waits for the reads under way
// to leave (a pipe reader's Read holds no lock, only a count), and reads
// that go on being called after Close must not keep it waiting: each
// returns net.ErrClosed without counting itself.
func TestPipeReaderCloseWhileReadsGoOn(t *testing.T) {
	r, _ := pipeReader(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	const readers = 4
	for range readers {
		go func() {
			defer func() { done <- struct{}{} }()
			b := make([]byte, 1)
			for {
				select {
				case <-stop:
					return
				default:
				}
				r.Read(b)
			}
		}()
	}
	defer func() {
		close(stop)
		for range readers {
			<-done
		}
	}()
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Close still waiting after 10 s while Reads go on (%d counted)", r.sleeping())
	}
}

// TestPipeReaderLeavesDuplicatesAlone: the descriptor's O_NONBLOCK flag
// belongs to the open file, which duplicates share (as
// transports.DescriptorConn hands them out). Close leaves it as it found
// it, with or without a Read asleep, so a duplicate's blocking reads
// still block.
func TestPipeReaderLeavesDuplicatesAlone(t *testing.T) {
	for _, asleep := range []bool{false, true} {
		r, w := pipeReader(t)
		dup, err := unix.FcntlInt(uintptr(r.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(dup)
		if asleep {
			done := readAsync(r, make([]byte, 8))
			asleepInRead(t, r.fd)
			r.Close()
			awaitErr(t, done, net.ErrClosed, "Close")
		} else {
			r.Close()
		}
		if fl, err := unix.FcntlInt(uintptr(dup), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
			t.Errorf("a Read asleep: %v: the duplicate's flags are %#x, %v after Close, want blocking", asleep, fl, err)
		}
		w.Write([]byte("x"))
		if n, err := unix.Read(dup, make([]byte, 8)); n != 1 || err != nil {
			t.Errorf("a Read asleep: %v: the duplicate's read = %d, %v", asleep, n, err)
		}
	}
}
