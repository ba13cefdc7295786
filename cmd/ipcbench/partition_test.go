package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestSecondHostVanishes cuts the wire under a `run -connect` measuring
// against an `ipcbench serve` on a second host, as a host that goes down
// or a partition does: nothing is closed, nothing more arrives. The two
// hosts are TestServeAcrossTwoHosts's namespaces; the cut sets veth-b
// down in B once the first case's messages cross the link. Then:
//   - the case measuring fails at its case timeout, saying so, the run
//     exits 1, and its records file keeps the header and what was
//     recorded;
//   - the run stops once a case finds the server silent, saying the
//     server does not answer, and the cases left are not run;
//   - with the link back, a new run against the same serve, which still
//     holds the vanished run's session, measures;
//   - serve stops on SIGINT with exit 0 and leaves nothing listening.
//
// Nothing here asserts a duration: a context bounds the whole test so
// that a hang fails it. The README says what this checks: keep the two in
// step.
func TestSecondHostVanishes(t *testing.T) {
	if !netns.HasHermeticNetwork() {
		t.Skip("no private network namespace here, so no second host can be made")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	link, err := netns.NewLink()
	if err != nil {
		t.Fatalf("NewLink: %v", err)
	}
	defer link.Close()
	var hb *netlink.Handle // its socket is made in B: it configures B's links
	if err := link.Do(netns.SideB, func() (err error) {
		hb, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	}); err != nil {
		t.Fatalf("netlink in B: %v", err)
	}
	defer hb.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Env = append(os.Environ(), envAsCLI+"=1")
		return cmd
	}

	var srv *server
	if err := link.Do(netns.SideB, func() error {
		srv = startServer(t, cli("serve", "-t", "tcp-public", "-listen", netns.LinkAddrB+":0"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Four cases of 3 s each, bounded at 6 s: the cut comes during the
	// first, and the last ones must never run.
	const (
		sizes       = "64,1k,4k,16k"
		cases       = 4
		caseTimeout = 6 * time.Second
	)
	out := filepath.Join(t.TempDir(), "cut.jsonl")
	runCmd := cli("run", "-t", "tcp-public", "-connect", srv.addr, "-w", "pingpong", "-s", sizes,
		"-d", "3s", "-warmup", "0", "-case-timeout", caseTimeout.String(), "-repeats", "1", "-q", "-out", out)
	var runOut bytes.Buffer
	runCmd.Stdout, runCmd.Stderr = &runOut, &runOut
	start := rxPackets(t, hb)
	if err := link.Do(netns.SideA, runCmd.Start); err != nil { // forked from a thread in A
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- runCmd.Wait() }()

	// The first case measures once B has received far more packets than
	// the probe and a case's session take (a few dozen): only the
	// measured messages make so many. No warm-up, so they are measured.
	const measuring = 1000
	for rxPackets(t, hb)-start < measuring {
		select {
		case err := <-runDone:
			t.Fatalf("the run ended (%v) before %d packets reached B:\n%s", err, measuring, runOut.String())
		case <-ctx.Done():
			t.Fatalf("B received %d packets of the run, not %d, within the test's time", rxPackets(t, hb)-start, measuring)
		case <-time.After(5 * time.Millisecond):
		}
	}
	vethB, err := hb.LinkByName(netns.LinkB)
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.LinkSetDown(vethB); err != nil {
		t.Fatalf("cut the link (set %s down): %v", netns.LinkB, err)
	}

	var runErr error
	select {
	case runErr = <-runDone:
	case <-ctx.Done():
		t.Fatalf("the run did not end after the link was cut:\n%s", runOut.String())
	}
	stderr := runOut.String()
	t.Logf("run across the cut: %v\n%s", runErr, stderr)
	if ee, ok := runErr.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("run across the cut: %v, want exit status 1", runErr)
	}
	// (a) The case measuring when the link went failed at its timeout,
	// saying so; the records up to it are in -out.
	h, rs := readRecords(t, out)
	if want := "serve " + srv.addr; h.Peer != want {
		t.Errorf("header peer %q, want %q", h.Peer, want)
	}
	if len(rs) == 0 {
		t.Fatal("no result recorded")
	}
	for _, r := range rs {
		t.Logf("%s %dB: %s: %s", r.Workload, r.Size, r.Status, r.Reason)
	}
	if first := rs[0]; first.Size != 64 || first.Status != bench.StatusFailed ||
		!strings.Contains(first.Reason, "timeout: case did not finish within "+caseTimeout.String()) {
		t.Errorf("first case %dB: %s: %q; want failed on its timeout, %v", first.Size, first.Status, first.Reason, caseTimeout)
	}
	for _, r := range rs {
		if r.Status != bench.StatusFailed {
			t.Errorf("%dB: %s, want failed: the link was down", r.Size, r.Status)
		}
	}
	// (b) The run stopped on the case that found the server silent.
	if !strings.Contains(stderr, "the server at "+srv.addr+" does not answer") {
		t.Errorf("the run's stderr does not say the server at %s does not answer", srv.addr)
	}
	if left := cases - len(rs); left < 1 || !strings.Contains(stderr, fmt.Sprintf("so the %d case runs left were not run", left)) {
		t.Errorf("%d of %d cases recorded; want the run to stop before the last, saying how many were left", len(rs), cases)
	}

	// (c) The link back, a new run measures against the same serve.
	mend(t, hb)
	out2 := filepath.Join(t.TempDir(), "after.jsonl")
	again := cli(append([]string{"run", "-t", "tcp-public", "-connect", srv.addr, "-w", "pingpong", "-out", out2}, quickRun...)...)
	var againOut []byte
	if err := link.Do(netns.SideA, func() error {
		againOut, err = again.CombinedOutput()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("run after the link came back: %v\n%s", err, againOut)
	}
	if _, rs := readRecords(t, out2); len(rs) != 1 || rs[0].Status != bench.StatusOK || rs[0].Messages == 0 {
		t.Errorf("run after the link came back: %+v, want one OK case", rs)
	}

	// (d) serve stops cleanly and nothing listens on its address any more.
	code, summary := srv.stop(t)
	t.Logf("serve's stderr:\n%s", srv.stderr)
	if code != 0 {
		t.Fatalf("serve exited %d: %s", code, summary)
	}
	if !strings.Contains(srv.stderr.String(), "ipcbench serve: stopped: ") {
		t.Errorf("serve printed no summary when stopped")
	}
	if err := link.Do(netns.SideB, func() error {
		ln, err := net.Listen("tcp", srv.addr)
		if err != nil {
			return fmt.Errorf("something still listens on %s after serve stopped: %w", srv.addr, err)
		}
		return ln.Close()
	}); err != nil {
		t.Error(err)
	}
}

// rxPackets returns how many packets veth-b in B has received.
func rxPackets(t *testing.T, h *netlink.Handle) uint64 {
	t.Helper()
	l, err := h.LinkByName(netns.LinkB)
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().Statistics == nil {
		t.Fatalf("no statistics for %s", netns.LinkB)
	}
	return l.Attrs().Statistics.RxPackets
}

// mend sets veth-b up again in B, gives it back its address if the kernel
// dropped it while the link was down, and checks that B has its route to
// A again.
func mend(t *testing.T, h *netlink.Handle) {
	t.Helper()
	l, err := h.LinkByName(netns.LinkB)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatalf("mend the link (set %s up): %v", netns.LinkB, err)
	}
	addrs, err := h.AddrList(l, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	kept := false
	for _, a := range addrs {
		kept = kept || a.IP.Equal(net.ParseIP(netns.LinkAddrB))
	}
	if !kept {
		addr, err := netlink.ParseAddr(netns.LinkAddrB + "/30")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(l, addr); err != nil {
			t.Fatalf("give %s back %s: %v", netns.LinkB, addr, err)
		}
	}
	routes, err := h.RouteGet(net.ParseIP(netns.LinkAddrA))
	if err != nil || len(routes) == 0 || routes[0].LinkIndex != l.Attrs().Index {
		t.Fatalf("B's route to %s after the link came back: %v, %v; want one through %s", netns.LinkAddrA, routes, err, netns.LinkB)
	}
}
