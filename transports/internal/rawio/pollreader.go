package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// PollReader reads from a descriptor that Go's poller manages (an
// *os.File's or a socket's) as the descriptor's own Read does — a
// non-blocking read, and while there is nothing to read the goroutine
// parked in the poller, with deadlines and Close working as for that
// Read — except that the read is a direct system call that cannot block
// (nowait.go says why, and when a kernel makes it the descriptor's own
// read instead), and with one step added: the first time a Read
// finds nothing, and no other goroutine of the process is waiting (on an
// FD, or parked in a PollReader that is not in the background: see
// SetBackground), it yields its CPU once (sched_yield(2)) and reads again
// before it parks.
//
// The yield is for a peer on the same CPU. In a request/response exchange
// the reader has just written the request, which made the peer runnable;
// parking instead costs a round trip through the scheduler (the goroutine
// parked, findRunnable polling the network without and then with
// blocking, the goroutine made runnable again) before the CPU is handed
// over, and the same again on the peer's side: about twice a C program's
// round trip when both processes share one CPU. Yielding hands the CPU
// over at once, and the reply is usually there when the yield returns.
// With the peer on another CPU, or with nothing else runnable, the yield
// returns at once and costs one system call and one more read(2) before
// the park. With other goroutines waiting (many connections) no Read
// yields: the runtime has other work to give the CPU to.
type PollReader struct {
	mu  sync.Mutex
	rc  syscall.RawConn
	io  *nowait
	try func(fd uintptr) bool // r.attempt, bound once

	// The call in progress, for attempt.
	b       []byte
	n       int
	err     error
	yielded bool // this call has yielded (or decided not to)
	parked  bool // this call is counted in parkedReads

	background atomic.Bool // SetBackground was called
}

// parkedReads counts the PollReader reads of this process now parked in
// the poller, those in the background left out. A parked read keeps every
// other PollReader from yielding (the runtime then has other goroutines
// to run when data comes), but not an FD from sleeping directly: it did
// not before PollReader existed either, when these reads were the
// standard library's.
var parkedReads atomic.Int32

// ParkedReads returns how many PollReader reads of this process are now
// parked in the poller and counted (not in the background).
func ParkedReads() int { return int(parkedReads.Load()) }

// SetBackground marks r as the reader of a connection that waits long
// between messages, such as a control connection open for a whole
// session: its reads, while parked, are not counted, so they never keep
// the process's other connections from yielding before they park. Its
// own reads still yield when they are the only wait.
func (r *PollReader) SetBackground() { r.background.Store(true) }

// NewPollReader returns a PollReader on the descriptor behind rc, which
// must be non-blocking and registered with the poller (as *os.File and
// net.Conn descriptors are).
func NewPollReader(rc syscall.RawConn) *PollReader {
	r := &PollReader{rc: rc, io: newNowait(rc)}
	r.try = r.attempt
	return r
}

// Read reads into b. It returns io.EOF at the end of the stream,
// net.ErrClosed once the descriptor is closed, os.ErrDeadlineExceeded when
// its read deadline passes, and an *os.SyscallError for the system call's
// own errors (ECONNRESET when the peer vanished). An empty b reads nothing
// and returns 0 and nil, or net.ErrClosed after Close. Calls are
// serialised.
func (r *PollReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		// As the descriptor's own Read: nothing to read, whatever the
		// deadline, unless the descriptor is closed.
		if r.rc.Control(func(uintptr) {}) != nil {
			return 0, net.ErrClosed
		}
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.b, r.n, r.err, r.yielded, r.parked = b, 0, nil, false, false
	err := r.rc.Read(r.try)
	n, rerr := r.n, r.err
	if r.parked {
		parkedReads.Add(-1)
	}
	r.b, r.err = nil, nil
	switch {
	case rerr != nil:
		return 0, rerr
	case err == nil && n == 0:
		return 0, io.EOF
	case err == nil:
		return n, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, os.ErrDeadlineExceeded
	case r.rc.Control(func(uintptr) {}) != nil:
		// Closed: the poller reports it with a sentinel of its own.
		return 0, net.ErrClosed
	default:
		// Open, but the poller cannot wait on it (a descriptor it does
		// not manage, or an error event): its cause, unwrapped.
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return 0, err
	}
}

// attempt reads into r.b; false asks the poller to wait until fd is
// readable.
func (r *PollReader) attempt(fd uintptr) bool {
	for {
		// A direct system call that cannot block (see nowait.go).
		n, err := r.io.read(int(fd), r.b)
		switch {
		case err == nil:
			r.n = n
			return true
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if !r.yielded {
				r.yielded = true
				if waiters.Load() == 0 && parkedReads.Load() == 0 {
					yield()
					continue
				}
			}
			if !r.parked && !r.background.Load() {
				r.parked = true
				parkedReads.Add(1)
			}
			return false
		default:
			r.err = os.NewSyscallError("read", err)
			return true
		}
	}
}

// yield gives up the calling thread's CPU to another runnable thread
// there, if there is one. It is a direct system call, as wait's first
// sleep is (see the package doc), but unlike that sleep it cannot be cut
// short: the runtime is not told, the thread keeps its P, and a peer that
// then runs a whole time slice on this CPU (a few milliseconds at most)
// holds up the goroutines queued on that P, and a stop-the-world, as
// long, as any preemption of the thread by the kernel would. Only a sole
// waiter yields, and in the exchange it is for the peer answers within a
// few microseconds.
func yield() {
	if yieldHook != nil {
		yieldHook()
	}
	syscall.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
}

// yieldHook, when set (by tests), is called at every yield.
var yieldHook func()
