package peer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports"
	"golang.org/x/sys/unix"
)

// Server models: how a peer serves the connections of a serve job
// (Job.Model), after the server designs of the Python Socket Programming
// HOWTO.
const (
	// ModelGoroutine serves each connection in a goroutine of its own,
	// through Go's network poller: the default.
	ModelGoroutine = "goroutine"
	// ModelThread serves each connection on an OS thread of its own
	// (runtime.LockOSThread) with blocking read(2) and write(2) on its
	// descriptors; the thread ends with the connection.
	ModelThread = "thread"
	// ModelProcess serves each connection in a child process of its own:
	// the peer starts its own executable again and hands it the
	// connection's descriptors; the child reports the connection's counts
	// on its stdout and exits. The serve job is ready once every child
	// serves, so their start-up is not measured.
	ModelProcess = "process"
	// ModelPoll serves every connection from one goroutine locked to one
	// OS thread, in an epoll loop over non-blocking descriptors. It needs
	// length-prefixed framing and the echo or sink role.
	ModelPoll = "poll"
)

// Models returns the server models in a fixed order: goroutine, thread,
// process, poll.
func Models() []string {
	return []string{ModelGoroutine, ModelThread, ModelProcess, ModelPoll}
}

// ErrNotApplicable means a serve job asked for a server model the
// transport's connections cannot be served with (a model that needs a
// descriptor, on shared memory). The bench side reports such a case as
// skipped, not failed; Reply.NotApplicable carries it.
var ErrNotApplicable = errors.New("server model not applicable")

// CheckModel returns nil for a known server model ("" is ModelGoroutine),
// else an error listing the models.
func CheckModel(model string) error {
	if model == "" {
		return nil
	}
	for _, m := range Models() {
		if m == model {
			return nil
		}
	}
	return fmt.Errorf("unknown server model %q (want %s, %s, %s or %s)", model, ModelGoroutine, ModelThread, ModelProcess, ModelPoll)
}

// checkModelJob says why job's model cannot serve its role and framing, or
// "" when it can.
func checkModelJob(model, role string, cfg frame.Config) string {
	if model != ModelPoll {
		return ""
	}
	if cfg.Mode != frame.LengthPrefix {
		return fmt.Sprintf("server model %s needs length-prefixed framing, not %s", ModelPoll, cfg.Mode)
	}
	if role != RoleEcho && role != RoleSink {
		return fmt.Sprintf("server model %s serves roles %s and %s, not %s", ModelPoll, RoleEcho, RoleSink, role)
	}
	return ""
}

// fdSet is the descriptors of one connection taken over by a model.
type fdSet struct {
	r, w int
}

func (f fdSet) sock() bool { return f.r == f.w }

// takeDescriptors duplicates every connection's descriptors. A connection
// without any (shared memory) gives an error wrapping ErrNotApplicable;
// nothing is left open on error.
func takeDescriptors(model, transport string, conns []net.Conn) ([]fdSet, error) {
	out := make([]fdSet, 0, len(conns))
	fail := func(err error) ([]fdSet, error) {
		for _, f := range out {
			f.close()
		}
		return nil, err
	}
	for i, c := range conns {
		dc, ok := c.(transports.DescriptorConn)
		if !ok {
			return fail(fmt.Errorf("%w: %s connections have no descriptor for the %s model to serve", ErrNotApplicable, transport, model))
		}
		r, w, err := dc.Descriptors()
		if err != nil {
			return fail(fmt.Errorf("descriptors of connection %d: %w", i, err))
		}
		out = append(out, fdSet{r: r, w: w})
	}
	return out, nil
}

func (f fdSet) close() {
	unix.Close(f.r)
	if !f.sock() {
		unix.Close(f.w)
	}
}

// setBlocking sets both descriptors blocking (or not).
func (f fdSet) setBlocking(blocking bool) error {
	for _, fd := range []int{f.r, f.w} {
		if err := unix.SetNonblock(fd, !blocking); err != nil {
			return fmt.Errorf("set O_NONBLOCK=%v: %w", !blocking, err)
		}
	}
	return nil
}

// fdStream reads and writes a connection's descriptors with blocking
// read(2) and write(2): each call blocks its thread in the kernel. A call
// that fails with EAGAIN waits in poll(2) until the descriptor is ready
// and is made again: a socket handed down by an io=raw connection keeps
// that connection's receive and send timeouts (socket options belong to
// the socket, which the duplicates share, not to a descriptor), so a
// blocking call on it returns EAGAIN when a timeout passes, with nothing
// wrong; and an io=raw pipe's reader may set O_NONBLOCK on the open file
// the duplicates share (see rawio.NewPipeReader).
type fdStream struct {
	fds fdSet

	mu     sync.Mutex
	closed bool
	wdone  bool // the write side was closed (pipe) or shut down (socket)
}

// Read reads with read(2); 0 bytes is io.EOF.
func (s *fdStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(s.fds.r, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			awaitReady(s.fds.r, unix.POLLIN)
			continue
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes all of p with write(2).
func (s *fdStream) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(s.fds.w, p[done:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			awaitReady(s.fds.w, unix.POLLOUT)
			continue
		}
		if err != nil {
			if err == unix.EPIPE || err == unix.ECONNRESET {
				err = fmt.Errorf("%w: %w", transports.ErrPeerGone, err)
			}
			return done, fmt.Errorf("write: %w", err)
		}
		done += n
	}
	return done, nil
}

// awaitReady sleeps in poll(2) until fd has one of events, an error or a
// hang-up; the caller then makes its call again, which reports those.
func awaitReady(fd int, events int16) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			return
		}
	}
}

// CloseWrite ends the sending direction: shutdown(2) on a socket, closing
// the write end of a pipe pair.
func (s *fdStream) CloseWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.wdone {
		return nil
	}
	s.wdone = true
	if s.fds.sock() {
		return os.NewSyscallError("shutdown", unix.Shutdown(s.fds.w, unix.SHUT_WR))
	}
	return os.NewSyscallError("close", unix.Close(s.fds.w))
}

// interrupt wakes a read blocked on a socket (shutdown(2) both ways);
// a pipe's blocked read cannot be woken from here and ends with the
// process.
func (s *fdStream) interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.fds.sock() {
		unix.Shutdown(s.fds.r, unix.SHUT_RDWR)
	}
}

// Close closes the descriptors.
func (s *fdStream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	unix.Close(s.fds.r)
	if !s.fds.sock() && !s.wdone {
		unix.Close(s.fds.w)
	}
}

// prepareModel takes the descriptors of conns for a model that needs them
// (nil for ModelGoroutine). When the connections have none, the error
// wraps ErrNotApplicable; nothing is left open on error.
func prepareModel(model, transport string, conns []net.Conn) ([]fdSet, error) {
	if model == "" || model == ModelGoroutine {
		return nil, nil
	}
	return takeDescriptors(model, transport, conns)
}

// serveModel serves loop (the job's role) on every connection of sv with
// the job's model and the descriptors prepareModel took, filling stats,
// and returns when all have ended. It closes up once every connection is
// being served (at once, but for ModelProcess: once its children run).
func (s *server) serveModel(sv *serving, model string, fds []fdSet, role string, cfg frame.Config, loop roleLoop, stats []ConnStats, up chan<- struct{}) {
	if model == ModelProcess {
		s.serveProcesses(sv, fds, role, cfg, stats, up)
		return
	}
	close(up)
	conns := sv.conns
	if model == "" || model == ModelGoroutine {
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := loop(c, cfg, i, &stats[i])
				c.Close()
				if err != nil && !sv.isClosing() {
					stats[i].Error = err.Error()
				}
			}()
		}
		wg.Wait()
		return
	}
	switch model {
	case ModelThread:
		s.serveThreads(sv, fds, cfg, loop, stats)
	case ModelPoll:
		s.servePoll(sv, fds, role, cfg, stats)
	}
}

// perConn runs serve for every connection in a goroutine of its own,
// locked to its OS thread (which ends with it: the goroutine exits still
// locked), and waits for all; an error, unless the job is shutting down,
// becomes the connection's. serve calls its ready once the connection is
// being served (or it returns); up, when not nil, is closed once every
// connection is.
func perConn(sv *serving, fds []fdSet, stats []ConnStats, up chan<- struct{}, serve func(i int, f fdSet, ready func()) error) {
	var wg, ups sync.WaitGroup
	ups.Add(len(fds))
	for i, f := range fds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			ready := func() { once.Do(ups.Done) }
			defer ready()
			runtime.LockOSThread()
			if err := serve(i, f, ready); err != nil && !sv.isClosing() {
				stats[i].Error = err.Error()
			}
		}()
	}
	ups.Wait()
	if up != nil {
		close(up)
	}
	wg.Wait()
}

// serveThreads is ModelThread: the role's loop on blocking descriptors,
// one thread per connection.
func (s *server) serveThreads(sv *serving, fds []fdSet, cfg frame.Config, loop roleLoop, stats []ConnStats) {
	perConn(sv, fds, stats, nil, func(i int, f fdSet, _ func()) error {
		st := &fdStream{fds: f}
		defer sv.conns[i].Close()
		defer st.Close()
		if err := f.setBlocking(true); err != nil {
			return err
		}
		if !sv.onClose(st.interrupt) {
			return nil // shutting down
		}
		return loop(st, cfg, i, &stats[i])
	})
}
