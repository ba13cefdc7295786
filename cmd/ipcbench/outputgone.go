package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// outputGuard stops a command that runs until it is stopped (serve) when
// its stdout or stderr goes away, as SIGINT and SIGTERM stop it: a pipe
// or unix socket whose reader closed it (`ipcbench serve ... | head -1`
// once head has read its line). By default Go kills a process that writes
// to such a pipe on descriptor 1 or 2 with SIGPIPE, before anything is
// cleaned up; from the first guard on, SIGPIPE is caught instead
// (os/signal) and the write returns EPIPE. Either way the guard finds out:
// a write through its writers that fails with EPIPE, or a watch on the
// two outputs that sees their reader go (poll's POLLERR or POLLHUP)
// before anything is written, since serve writes there only now and then.
// A TCP socket whose peer closed shows neither until a write fails. An
// output that goes after a stop (SIGINT, SIGTERM) began is not reported:
// the stop is what happened.
type outputGuard struct {
	parent  context.Context // a stop already under way here (a signal) is not an output gone
	stop    context.CancelFunc
	wake    [2]int        // a pipe whose closed write end ends the watch; -1 without one
	watched chan struct{} // closed when the watch has ended

	mu   sync.Mutex
	gone string // the output found gone first: "stdout" or "stderr"
}

// guardOutputs opens a guard on e's outputs (see outputGuard). It returns
// a context that ends when ctx does or when an output is found gone, and
// an env whose stdout and stderr are e's, reporting a write that finds
// the reader gone. Close the guard when the command is done with its
// outputs; SIGPIPE stays caught (see catchSIGPIPE).
func guardOutputs(ctx context.Context, e *env) (context.Context, *env, *outputGuard, error) {
	parent := ctx
	ctx, stop := context.WithCancel(ctx)
	g := &outputGuard{parent: parent, stop: stop, wake: [2]int{-1, -1}}
	var fds []unix.PollFd
	var names []string
	for _, o := range []struct {
		name string
		w    io.Writer
	}{{"stdout", e.stdout}, {"stderr", e.stderr}} {
		fd, err := watchableFd(o.w)
		if err != nil {
			stop()
			return nil, nil, nil, fmt.Errorf("%s: %w", o.name, err)
		}
		if fd >= 0 {
			// No events asked: poll reports only POLLERR (a pipe
			// without a reader), POLLHUP and POLLNVAL.
			fds = append(fds, unix.PollFd{Fd: int32(fd)})
			names = append(names, o.name)
		}
	}
	g.watched = make(chan struct{})
	if len(fds) == 0 {
		close(g.watched)
	} else {
		if err := unix.Pipe2(g.wake[:], unix.O_CLOEXEC); err != nil {
			stop()
			return nil, nil, nil, fmt.Errorf("watching stdout and stderr: %w", err)
		}
		go g.watch(append(fds, unix.PollFd{Fd: int32(g.wake[0]), Events: unix.POLLIN}), names)
	}
	catchSIGPIPE()
	out := &env{stdin: e.stdin, stdout: guardedWriter{e.stdout, "stdout", g}, stderr: guardedWriter{e.stderr, "stderr", g}}
	return ctx, out, g, nil
}

// watchableFd returns the descriptor of w when it is a pipe or a socket,
// an output whose reader may go away, and -1 for any other writer (a
// terminal, a regular file, a buffer).
func watchableFd(w io.Writer) (int, error) {
	f, ok := w.(*os.File)
	if !ok {
		return -1, nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var serr error
	if err := rc.Control(func(d uintptr) {
		var st unix.Stat_t
		if serr = unix.Fstat(int(d), &st); serr == nil {
			if t := st.Mode & unix.S_IFMT; t == unix.S_IFIFO || t == unix.S_IFSOCK {
				fd = int(d)
			}
		}
	}); err != nil {
		return -1, err
	}
	return fd, serr
}

// watch polls fds, the outputs named by names and the wake pipe last,
// until an output's reader is gone or the wake pipe is closed.
func (g *outputGuard) watch(fds []unix.PollFd, names []string) {
	defer close(g.watched)
	wake := len(fds) - 1
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || fds[wake].Revents != 0 {
			return
		}
		for i := range fds[:wake] {
			switch r := fds[i].Revents; {
			case r&(unix.POLLERR|unix.POLLHUP) != 0:
				g.lost(names[i])
				return
			case r != 0: // POLLNVAL: not a descriptor any more; nothing to watch
				fds[i].Fd = -1
			}
		}
	}
}

// lost records that the output name is gone and ends the guard's context.
func (g *outputGuard) lost(name string) {
	if g.parent.Err() != nil {
		// A stop (SIGINT, SIGTERM) came first, and with it, often, the
		// end of the reader (a shell's Ctrl-C reaches both): not gone.
		return
	}
	g.mu.Lock()
	if g.gone == "" {
		g.gone = name
	}
	g.mu.Unlock()
	g.stop()
}

// Gone returns the output found gone first ("stdout" or "stderr"), or ""
// while both are there.
func (g *outputGuard) Gone() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gone
}

// Close ends the watch and the context.
func (g *outputGuard) Close() {
	if g.wake[1] >= 0 {
		unix.Close(g.wake[1])
	}
	<-g.watched
	if g.wake[0] >= 0 {
		unix.Close(g.wake[0])
	}
	g.wake = [2]int{-1, -1}
	g.stop()
}

// catchSIGPIPE makes a write to a pipe without a reader return EPIPE
// instead of killing the process, from the first guard on and for the rest
// of the process's life: a command that opened a guard is about to exit
// once it closes it, and the line that says why must not kill it.
var catchSIGPIPE = sync.OnceFunc(func() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
})

// guardedWriter is an output of a guard: a write that fails with EPIPE
// tells the guard that the output is gone.
type guardedWriter struct {
	w    io.Writer
	name string
	g    *outputGuard
}

func (w guardedWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		w.g.lost(w.name)
	}
	return n, err
}
