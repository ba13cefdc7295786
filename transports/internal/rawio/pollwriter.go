package rawio

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// PollWriter writes to a descriptor that Go's poller manages (an
// *os.File's or a socket's): each write is a direct system call that
// cannot block (nowait.go says why, and when a kernel makes it one through
// the runtime's path instead), made through syscall.RawConn.Write,
// which parks the goroutine in the poller while the descriptor is full, so
// deadlines and Close work as for the descriptor's own Write. It adds the
// vectored write an *os.File lacks (WriteBuffers). It allocates nothing
// per call.
type PollWriter struct {
	mu  sync.Mutex
	rc  syscall.RawConn
	io  *nowait
	try func(fd uintptr) bool // w.attempt, bound once

	// The call in progress, for attempt.
	v   *net.Buffers
	n   int64
	err error
	op  string // "write" or "writev", for the errors
	// one holds Write's buffer, as the net.Buffers that attempt writes.
	one    [1][]byte
	oneBuf net.Buffers
}

// NewPollWriter returns a PollWriter on the descriptor behind rc, which
// must be non-blocking and registered with the poller (as *os.File and
// net.Conn descriptors are).
func NewPollWriter(rc syscall.RawConn) *PollWriter {
	w := &PollWriter{rc: rc, io: newNowait(rc)}
	w.try = w.attempt
	return w
}

// Write writes all of b and returns the count of bytes written; its
// errors are WriteBuffers'. An empty b makes no system call: it returns 0
// and nil, or the closed error after Close (a socket's own Write sends
// nothing too, but would report a peer already gone).
func (w *PollWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.one[0] = b
	w.oneBuf = w.one[:]
	n, err := w.write(&w.oneBuf, "write")
	w.one[0], w.oneBuf = nil, nil
	return int(n), err
}

// WriteBuffers writes all of *v, consuming it as net.Buffers.WriteTo does,
// and returns the count of bytes written. It fails with net.ErrClosed once
// the descriptor is closed (as PollReader's Read), os.ErrDeadlineExceeded
// when the write deadline passes, and an *os.SyscallError for the system
// call's own errors (EPIPE when the reader is gone). Calls are serialised.
func (w *PollWriter) WriteBuffers(v *net.Buffers) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.write(v, "writev")
}

// write is WriteBuffers with w.mu held; op names the call in errors.
func (w *PollWriter) write(v *net.Buffers, op string) (int64, error) {
	w.v, w.n, w.err, w.op = v, 0, nil, op
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
	case w.rc.Control(func(uintptr) {}) != nil:
		// Closed: the poller reports it with a sentinel of its own.
		return n, net.ErrClosed
	default:
		// Open, but the poller cannot wait on it: its cause, unwrapped.
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return n, err
	}
}

// attempt writes as much of w.v as fd takes; false asks the poller to wait
// until fd is writable.
func (w *PollWriter) attempt(fd uintptr) bool {
	for len(*w.v) > 0 {
		n, err := w.io.writev(int(fd), w.v)
		w.n += n
		switch {
		case err == nil, err == unix.EINTR:
		case err == unix.EAGAIN:
			return false
		default:
			w.err = os.NewSyscallError(w.op, err)
			return true
		}
	}
	return true
}
