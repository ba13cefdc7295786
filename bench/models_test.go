package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// TestPeerModels runs fanin at 4 connections and connect through every
// server model over unix, tcp-localhost, pipe and shm-ring: the socket
// and pipe cases are OK with every payload checked, shared memory and the
// connect workload are skipped as not applicable for every model but
// goroutine, and every record names its model.
func TestPeerModels(t *testing.T) {
	o := testOptions(t)
	o.Transports = nil
	for _, name := range []string{"unix", "tcp-localhost", "pipe", "shm-ring"} {
		tr, err := all.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		o.Transports = append(o.Transports, TransportSpec{Transport: tr})
	}
	o.PeerModels = peer.Models()
	o.Workloads = []string{"fanin", "connect"}
	o.FaninConns = []int{4}
	o.Sizes = []int{1 << 10}
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	recs := runAll(t, r)
	seen := map[string]bool{}
	for _, res := range recs.Results {
		name := res.Workload + " " + res.Transport + "[" + res.Variant + "]"
		seen[res.PeerModel] = true
		applicable := res.PeerModel == peer.ModelGoroutine || res.Transport != "shm-ring" && res.Workload != "connect"
		switch {
		case applicable && res.Status != StatusOK:
			t.Errorf("%s: %s: %s", name, res.Status, res.Reason)
		case applicable && (res.Messages <= 0 || res.Errors != 0):
			t.Errorf("%s: %d messages, %d errors", name, res.Messages, res.Errors)
		case !applicable && (res.Status != StatusSkipped || !strings.Contains(res.Reason, "not applicable")):
			t.Errorf("%s: %s (%s), want skipped as not applicable", name, res.Status, res.Reason)
		}
		if want := "model=" + res.PeerModel; res.PeerModel != peer.ModelGoroutine && res.Variant != want {
			t.Errorf("%s: variant %q, want %q", name, res.Variant, want)
		}
	}
	for _, m := range peer.Models() {
		if !seen[m] {
			t.Errorf("no record names peer model %s", m)
		}
	}
}

// runAll runs r's whole plan and fails the test, naming every failed
// case, unless the run succeeded.
func runAll(t *testing.T, r *Runner) *Records {
	t.Helper()
	recs, err := r.Run(context.Background(), Header{Tool: "test"}, &bytes.Buffer{})
	if err != nil {
		for _, res := range recs.Results {
			if res.Status == StatusFailed {
				t.Errorf("%s %s[%s]: %s", res.Workload, res.Transport, res.Variant, res.Reason)
			}
		}
		t.Fatalf("Run: %v", err)
	}
	return recs
}
