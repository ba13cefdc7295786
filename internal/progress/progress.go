// Package progress draws a one-line progress display for long runs.
//
// The display knows nothing of what it reports on: it is fed by a poll
// callback that returns the current counters, so the runner never depends
// on it and it never depends on the runner. It draws only on a terminal and
// only where it is told to (stderr, by convention), so that output piped to
// a file or another program, and quiet runs, carry nothing but results.
// Drawing uses github.com/schollz/progressbar/v3.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// DefaultInterval is the redraw interval Start uses when given none.
const DefaultInterval = 200 * time.Millisecond

// barWidth is the width of the bar itself, in columns.
const barWidth = 20

// Snapshot is the state of a run as the poll callback reports it.
type Snapshot struct {
	// Done is the number of cases finished.
	Done int
	// Total is the number of cases in the run; 0 or less when unknown.
	Total int
	// Label names what is running now ("pingpong unix 64B repeat 2").
	Label string
}

// Display is a progress line being drawn. The zero value, like the Display
// Start returns when it has nothing to draw on, draws nothing, and its Stop
// returns at once.
type Display struct {
	once sync.Once
	stop chan struct{} // closed by Stop
	done chan struct{} // closed when the drawing goroutine has exited
}

// IsTerminal reports whether w is a terminal: a file (anything with an Fd
// method, such as *os.File) whose descriptor is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// Start begins drawing progress on w, redrawn every interval (DefaultInterval
// when interval <= 0) from the Snapshot poll returns: "case n of m", a bar,
// the label, the elapsed time and an estimate of the time left (from the
// mean time per finished case). It draws only when enabled is true, poll is
// not nil and w is a terminal (IsTerminal); otherwise nothing is ever
// written to w and no goroutine is started. poll is called from the drawing
// goroutine and must be safe to call concurrently with the caller's work.
// Call Stop to end the display.
func Start(w io.Writer, enabled bool, interval time.Duration, poll func() Snapshot) *Display {
	d := &Display{}
	if !enabled || poll == nil || !IsTerminal(w) {
		return d
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	d.stop = make(chan struct{})
	d.done = make(chan struct{})
	width := terminalWidth(w)
	bar := progressbar.NewOptions(1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(barWidth),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionSetRenderBlankState(false),
	)
	go d.run(w, bar, interval, poll, width)
	return d
}

// run redraws the bar until Stop, then clears its line.
func (d *Display) run(w io.Writer, bar *progressbar.ProgressBar, interval time.Duration, poll func() Snapshot, width int) {
	defer close(d.done)
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	limit := 1
	for {
		s := poll()
		if m := barMax(s); m != limit {
			limit = m
			bar.ChangeMax(limit)
		}
		_ = bar.Set(min(max(s.Done, 0), limit))
		bar.Describe(describe(s, time.Since(start), width))
		select {
		case <-tick.C:
		case <-d.stop:
			_ = bar.Clear()
			return
		}
	}
}

// Stop ends the display: it stops redrawing, clears the progress line and
// waits until the drawing goroutine has exited. It is safe to call more than
// once and from several goroutines; later calls return after the first has
// finished.
func (d *Display) Stop() {
	d.once.Do(func() {
		if d.stop == nil {
			return
		}
		close(d.stop)
		<-d.done
	})
}

// barMax returns the bar's maximum for s: Total, but at least Done and 1.
func barMax(s Snapshot) int {
	return max(s.Total, s.Done, 1)
}

// describe returns the text shown beside the bar, cut to fit a terminal of
// width columns (0 when unknown).
func describe(s Snapshot, elapsed time.Duration, width int) string {
	var b strings.Builder
	if s.Total > 0 {
		fmt.Fprintf(&b, "case %d of %d", min(s.Done+1, s.Total), s.Total)
	} else {
		fmt.Fprintf(&b, "case %d", s.Done+1)
	}
	fmt.Fprintf(&b, "  %s elapsed", elapsed.Round(time.Second))
	if eta, ok := estimate(s, elapsed); ok {
		fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
	}
	if s.Label != "" {
		b.WriteString("  ")
		b.WriteString(s.Label)
	}
	text := b.String()
	// The bar, its percentage and spacing take about barWidth+10 columns;
	// a line longer than the terminal would wrap and break redrawing.
	if width > 0 {
		text = truncate(text, width-barWidth-10)
	}
	return text
}

// estimate returns the time left, from the mean time per finished case, or
// false when it cannot be known yet.
func estimate(s Snapshot, elapsed time.Duration) (time.Duration, bool) {
	if s.Total <= 0 || s.Done <= 0 {
		return 0, false
	}
	left := s.Total - s.Done
	if left <= 0 {
		return 0, true
	}
	return time.Duration(float64(elapsed) / float64(s.Done) * float64(left)), true
}

// terminalWidth returns the width of the terminal w, or 0 when unknown.
func terminalWidth(w io.Writer) int {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}

// truncate returns text cut to at most n runes.
func truncate(text string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for j := range text {
		if i == n {
			return text[:j]
		}
		i++
	}
	return text
}
