package rawio

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// PollWriter writes buffers with writev(2) to a descriptor that Go's poller
// manages (an *os.File's), which offers no vectored write of its own: each
// writev is a direct system call made through syscall.RawConn.Write, which
// parks the goroutine in the poller while the descriptor is full, so
// deadlines and Close work as for the file's Write. It allocates nothing
// per call.
type PollWriter struct {
	mu  sync.Mutex
	rc  syscall.RawConn
	try func(fd uintptr) bool // w.attempt, bound once

	// The call in progress, for attempt.
	v   *net.Buffers
	n   int64
	err error
}

// NewPollWriter returns a PollWriter on the descriptor behind rc.
func NewPollWriter(rc syscall.RawConn) *PollWriter {
	w := &PollWriter{rc: rc}
	w.try = w.attempt
	return w
}

// WriteBuffers writes all of *v, consuming it as net.Buffers.WriteTo does,
// and returns the count of bytes written. It fails with os.ErrClosed when
// the file is closed, os.ErrDeadlineExceeded when its write deadline
// passes, and an *os.SyscallError for the system call's own errors (EPIPE
// when the reader is gone). Calls are serialised.
func (w *PollWriter) WriteBuffers(v *net.Buffers) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.v, w.n, w.err = v, 0, nil
	err := w.rc.Write(w.try)
	n, werr := w.n, w.err
	w.v, w.err = nil, nil
	switch {
	case werr != nil:
		return n, werr
	case err == nil:
		return n, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, os.ErrDeadlineExceeded
	default:
		// The poller's only other failure: the file was closed (its
		// own sentinel, which the file's Write reports as os.ErrClosed).
		return n, os.ErrClosed
	}
}

// attempt writes as much of w.v as fd takes; false asks the poller to wait
// until fd is writable.
func (w *PollWriter) attempt(fd uintptr) bool {
	for len(*w.v) > 0 {
		n, err := Writev(int(fd), w.v)
		w.n += n
		switch {
		case err == nil, err == unix.EINTR:
		case err == unix.EAGAIN:
			return false
		default:
			w.err = os.NewSyscallError("writev", err)
			return true
		}
	}
	return true
}
