package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/netns"
)

// TestServeAcrossTwoHosts runs the way a user measures across two
// machines: `ipcbench serve` in namespace B and `ipcbench run -connect` in
// namespace A, two fresh namespaces joined by a veth pair (netns.Link), so
// every byte crosses a real link and nothing touches the host's
// interfaces. Both are separate processes of the CLI, started inside their
// namespace; the serve side listens on B's address only. The run has no
// -network flag, as the README's command has none: with -connect it stays
// on its host's network (here A's). The README says what this runs: keep
// the two in step.
func TestServeAcrossTwoHosts(t *testing.T) {
	if !netns.HasHermeticNetwork() {
		t.Skip("no private network namespace here, so no second host can be made")
	}
	link, err := netns.NewLink()
	if err != nil {
		t.Fatalf("NewLink: %v", err)
	}
	defer link.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	serveCmd := exec.Command(exe, "serve", "-t", "tcp-public", "-listen", netns.LinkAddrB+":0")
	serveCmd.Env = append(os.Environ(), envAsCLI+"=1")
	var srv *server
	if err := link.Do(netns.SideB, func() error {
		srv = startServer(t, serveCmd) // forked from a thread in B: the server lives in B
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.addr, netns.LinkAddrB+":") {
		t.Fatalf("serve listens on %q, want %s:PORT and nothing wider", srv.addr, netns.LinkAddrB)
	}

	out := filepath.Join(t.TempDir(), "run.jsonl")
	runCmd := exec.Command(exe, append([]string{"run", "-t", "tcp-public", "-connect", srv.addr,
		"-w", "pingpong,stream,fanin", "-conns", "2", "-out", out}, quickRun...)...)
	runCmd.Env = append(os.Environ(), envAsCLI+"=1")
	var runOut []byte
	var runErr error
	if err := link.Do(netns.SideA, func() error {
		runOut, runErr = runCmd.CombinedOutput() // forked from a thread in A
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h, rs := readRecords(t, out)
	if runErr != nil {
		for _, r := range rs {
			t.Logf("%s %s: %s: %s", r.Workload, r.Transport, r.Status, r.Reason)
		}
		t.Fatalf("run in A: %v\n%s", runErr, runOut)
	}
	if want := "serve " + srv.addr; h.Peer != want {
		t.Errorf("header peer %q, want %q", h.Peer, want)
	}
	if len(rs) != 3 {
		t.Fatalf("%d results, want pingpong, stream and fanin", len(rs))
	}
	for _, r := range rs {
		if r.Status != bench.StatusOK || r.Messages == 0 {
			t.Errorf("%s: %s, %d messages: %s", r.Workload, r.Status, r.Messages, r.Reason)
		}
	}
	if code, summary := srv.stop(t); code != 0 {
		t.Fatalf("serve exited %d: %s", code, summary)
	}
}
