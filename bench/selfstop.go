package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// ErrSelfStopped is the error of a case during which this process was
// stopped (SIGSTOP, or SIGTSTP: Ctrl-Z in a shell) and continued: the
// case's clocks ran on through the stop, so its timings include it.
var ErrSelfStopped = errors.New("this process was stopped (SIGSTOP or Ctrl-Z) and continued during the case, so its timings include the stop; run it again")

// ErrPeerStopped is the error of a case during which the peer process
// was seen stopped (SIGSTOP, by hand or by a debugger): the bench's clocks
// ran on while the peer did not, so the case's timings include the stop.
// RunCase runs such a case again, as it does one of ErrSelfStopped. The
// peer is looked at with every sample of where it runs (every 50 ms), so
// a shorter stop may go unseen.
var ErrPeerStopped = errors.New("the peer process was stopped (SIGSTOP) and continued during the case, so its timings include the stop; run it again")

// selfStop notices this process being stopped and continued during a
// case, by the SIGCONT the kernel sends it on the continue (also when it
// was not stopped, which a stray `kill -CONT` does; rare, and harmless
// to take for a stop). The peer runs in a process group of its own, so
// Ctrl-Z stops the bench alone, and a peer waiting for it cannot tell.
type selfStop struct {
	ch   chan os.Signal
	seen bool
}

// watchSelfStop starts noticing; end it with stop.
func watchSelfStop() *selfStop {
	s := &selfStop{ch: make(chan os.Signal, 1)}
	signal.Notify(s.ch, syscall.SIGCONT)
	return s
}

// stopped reports whether a SIGCONT came since watchSelfStop. The
// signal reaches the channel a moment after the continue, so a look right
// after may miss one that came at the very end of the case.
func (s *selfStop) stopped() bool {
	if !s.seen {
		select {
		case <-s.ch:
			s.seen = true
		default:
		}
	}
	return s.seen
}

// stop ends the noticing.
func (s *selfStop) stop() { signal.Stop(s.ch) }

// reasonError is an error that reads as a case's reason and wraps a
// sentinel the reason already says in its own words.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.reason }
func (e *reasonError) Unwrap() error { return e.err }

// selfStopRetries is how many times RunCase runs a case again that failed
// because this process was stopped during it.
const selfStopRetries = 2

// RetryStopped runs measure, which measures something this package does
// not run itself (one of ipcbench floor's C programs, say) and whose
// figures a stop of this process would take in, and runs it again, as
// RunCase runs a case again, while this process was stopped and continued
// during it: at most selfStopRetries times more. A try during which no
// stop came returns measure's error. When every try saw one, or ctx ended
// after one, the error wraps ErrSelfStopped, and the last try's own error
// if it had one.
func RetryStopped(ctx context.Context, measure func() error) error {
	return retryStopped(ctx, func(*selfStop) error { return measure() })
}

// retryStopped is RetryStopped, with each try handed the watch of its
// stops (for tests, to wait until a SIGCONT they sent has reached it).
func retryStopped(ctx context.Context, measure func(*selfStop) error) error {
	for try := 0; ; try++ {
		s := watchSelfStop()
		err := measure(s)
		stopped := s.stopped()
		s.stop()
		switch {
		case !stopped:
			return err
		case try < selfStopRetries && ctx.Err() == nil:
			continue
		case err != nil:
			return fmt.Errorf("%w; the last try: %w", ErrSelfStopped, err)
		default:
			return ErrSelfStopped
		}
	}
}
