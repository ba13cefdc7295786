package rawio

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipeFD returns an FD on the read end of a new pipe and the write end.
func pipeFD(t *testing.T) (*FD, *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, err := New(p[0])
	if err != nil {
		t.Fatal(err)
	}
	w := os.NewFile(uintptr(p[1]), "pipe-w")
	t.Cleanup(func() { r.Close(); w.Close() })
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
