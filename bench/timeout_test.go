package bench

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCaseTimeoutDuringStart: a case timeout too short for the peer to
// start fails the case on its timeout, named as such (not as a peer that
// failed to start, nor as the 30 s start timeout that did not pass), and
// the run goes on.
func TestCaseTimeoutDuringStart(t *testing.T) {
	o := testOptions(t)
	o.Transports = o.Transports[:1]
	o.Workloads = []string{"pingpong"}
	o.Sizes = []int{64}
	o.Repeats = 2
	o.CaseTimeout = 200 * time.Millisecond
	// A peer that never says its handshake: the case timeout passes while
	// it is starting.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command:", err)
	}
	o.Peer.Path, o.Peer.Args = sleep, []string{"60"}
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.Run(context.Background(), Header{}, &bytes.Buffer{})
	if errors.Is(err, ErrPeerStart) || !errors.Is(err, ErrCasesFailed) {
		t.Fatalf("Run = %v; want ErrCasesFailed, not ErrPeerStart", err)
	}
	if len(recs.Results) != 2 {
		t.Fatalf("%d results, want 2 (the run goes on)", len(recs.Results))
	}
	for _, res := range recs.Results {
		if res.Status != StatusFailed || !strings.Contains(res.Reason, "case did not finish within 200ms") || strings.Contains(res.Reason, "no handshake within") {
			t.Errorf("result %s: %q; want a failure naming the 200ms case timeout", res.Status, res.Reason)
		}
	}
}
