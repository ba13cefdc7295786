package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// epipeWriter fails every write with EPIPE, as a pipe without a reader.
type epipeWriter struct{}

func (epipeWriter) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "|1", Err: syscall.EPIPE}
}

// TestGuardOutputsWrite: a write through the guard that fails with EPIPE
// ends the guard's context and names the output; other write errors and
// good writes do not.
func TestGuardOutputsWrite(t *testing.T) {
	var errBuf bytes.Buffer
	ctx, e, g, err := guardOutputs(context.Background(), &env{stdout: failWriter{}, stderr: &errBuf})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	fmt.Fprintln(e.stderr, "fine")
	fmt.Fprintln(e.stdout, "an error that is not EPIPE")
	if ctx.Err() != nil || g.Gone() != "" {
		t.Fatalf("guard ended (%v, gone %q) without a broken pipe", ctx.Err(), g.Gone())
	}
	ctx, e, g2, err := guardOutputs(context.Background(), &env{stdout: &bytes.Buffer{}, stderr: epipeWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	if _, err := io.WriteString(e.stderr, "lost"); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write: %v, want the EPIPE passed on", err)
	}
	if ctx.Err() == nil || g2.Gone() != "stderr" {
		t.Fatalf("after EPIPE on stderr: context %v, gone %q; want it ended and stderr named", ctx.Err(), g2.Gone())
	}
}

// TestGuardOutputsWatch: the guard sees a pipe's reader go without a
// write, and Close ends its watch when nothing went.
func TestGuardOutputsWatch(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, _, g, err := guardOutputs(context.Background(), &env{stdout: &bytes.Buffer{}, stderr: w})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the guard did not see the pipe's reader go within 20s")
	}
	if g.Gone() != "stderr" {
		t.Errorf("gone %q, want stderr", g.Gone())
	}
	g.Close()

	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	defer w2.Close()
	ctx, _, g, err = guardOutputs(context.Background(), &env{stdout: w2, stderr: w2})
	if err != nil {
		t.Fatal(err)
	}
	g.Close() // returns once the watch has ended
	if g.Gone() != "" {
		t.Errorf("gone %q with the reader still there", g.Gone())
	}
	if ctx.Err() == nil {
		t.Error("the guard's context is not ended by Close")
	}
}

// TestGuardOutputsStopFirst: an output that goes after a stop began (the
// parent context ended: SIGINT reaching serve and its pipe's reader at
// once) is not reported as gone, so serve exits as stopped, not 141.
func TestGuardOutputsStopFirst(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	_, e, g, err := guardOutputs(parent, &env{stdout: &bytes.Buffer{}, stderr: epipeWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	stop()
	io.WriteString(e.stderr, "lost")
	if g.Gone() != "" {
		t.Fatalf("gone %q after the stop; want nothing reported", g.Gone())
	}
}
