package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// TestPeerSources runs pingpong, stream, fanin at 2 connections and
// connect over pipe, shm-ring and unix with every peer source, in one run:
// every case is OK with every payload checked except unix by address,
// which is skipped as the inherit case; every record names its source and
// the source its variant; every process the run started is reaped, and
// nothing (descriptor, goroutine, child, socket or rendezvous directory)
// is left behind.
func TestPeerSources(t *testing.T) {
	// A temporary directory of the test's own: others' files in the
	// shared one are not this run's leaks.
	t.Setenv("TMPDIR", t.TempDir())
	transporttest.NoLeaks(t)
	o := testOptions(t)
	o.Transports = nil
	for _, name := range []string{"pipe", "shm-ring", "unix"} {
		tr, err := all.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		o.Transports = append(o.Transports, TransportSpec{Transport: tr})
	}
	o.PeerSources = PeerSources()
	o.Workloads = []string{"pingpong", "stream", "fanin", "connect"}
	o.FaninConns = []int{2}
	o.Sizes = []int{1 << 10}
	o.Count = 40
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var pids []int
	r.onPeerStart = func(pid int) {
		mu.Lock()
		pids = append(pids, pid)
		mu.Unlock()
	}
	recs := runAll(t, r)
	seen := map[string]int{}
	for _, res := range recs.Results {
		name := res.Workload + " " + res.Transport + "[" + res.Variant + "]"
		seen[res.PeerSource]++
		sameAsInherit := res.Transport == "unix" && res.PeerSource == SourceAddress
		switch {
		case sameAsInherit && (res.Status != StatusSkipped || !strings.Contains(res.Reason, "is the via=inherit case")):
			t.Errorf("%s: %s (%s), want skipped as the inherit case", name, res.Status, res.Reason)
		case !sameAsInherit && res.Status != StatusOK:
			t.Errorf("%s: %s: %s", name, res.Status, res.Reason)
		case !sameAsInherit && (res.Messages <= 0 || res.Errors != 0):
			t.Errorf("%s: %d messages, %d errors", name, res.Messages, res.Errors)
		}
		want := ""
		if res.PeerSource != SourceInherit {
			want = SourceKey + "=" + res.PeerSource
		}
		if res.Variant != want {
			t.Errorf("%s: source %q, variant %q, want %q", name, res.PeerSource, res.Variant, want)
		}
	}
	for _, src := range PeerSources() {
		if seen[src] != len(recs.Results)/len(PeerSources()) {
			t.Errorf("%d records name peer source %s, want %d", seen[src], src, len(recs.Results)/len(PeerSources()))
		}
	}
	// Peers and servers: one per case that was not skipped.
	if want := len(recs.Results) - len(o.Workloads); len(pids) != want {
		t.Errorf("%d processes started, want %d", len(pids), want)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d is still there (running or unreaped)", pid)
		}
	}
}

// TestPeerSourceVariants: PeerSources plans every transport once per
// source after the models, and every source but inherit names a variant.
func TestPeerSourceVariants(t *testing.T) {
	pipe, err := all.Lookup("pipe")
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.Transports = []TransportSpec{{Transport: pipe, Options: map[string]string{"io": "raw"}}}
	o.PeerModels = []string{"goroutine", "poll"}
	o.PeerSources = []string{SourceInherit, SourceServe}
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, tr := range r.opts.Transports {
		labels = append(labels, tr.Label()+" "+tr.Source())
	}
	want := []string{
		"pipe[io=raw] inherit", "pipe[io=raw,via=serve] serve",
		"pipe[io=raw,model=poll] inherit", "pipe[io=raw,model=poll,via=serve] serve",
	}
	if !slices.Equal(labels, want) {
		t.Fatalf("transports %q, want %q", labels, want)
	}
	if _, ok := o.Transports[0].Options[SourceKey]; ok {
		t.Fatal("the source leaked into the transport's options")
	}
	if got := r.opts.Transports[1].transportSpec().String(); got != "pipe[io=raw]" {
		t.Fatalf("the spec a server is started with is %q, want pipe[io=raw]", got)
	}
}

// TestPeerSourceOptionErrors: an unknown source, and any source but
// inherit against a remote peer, are refused before anything runs.
func TestPeerSourceOptionErrors(t *testing.T) {
	o := testOptions(t)
	o.PeerSources = []string{"inherit", "fork"}
	if _, err := NewRunner(o); !errors.Is(err, ErrBadOptions) || !strings.Contains(err.Error(), `"fork"`) {
		t.Errorf("unknown source: err = %v, want ErrBadOptions naming it", err)
	}
	o = testOptions(t)
	o.PeerSources = []string{SourceServe}
	o.Remote = &Remote{Address: "127.0.0.1:1"}
	if _, err := NewRunner(o); !errors.Is(err, ErrBadOptions) || !strings.Contains(err.Error(), "remote peer") {
		t.Errorf("serve source with a remote peer: err = %v, want ErrBadOptions", err)
	}
}

// TestPeerSourceServeFaults kills (SIGKILL) or stops (SIGSTOP) the serve
// source's server while a case measures over unix and shm-ring: the case
// fails (on its timeout, for the stopped server; naming the server's
// death, for the killed one), the server is reaped, and nothing is left
// behind, its socket and rendezvous directories included.
func TestPeerSourceServeFaults(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	transporttest.NoLeaks(t)
	o := testOptions(t)
	o.Transports = nil
	for _, name := range []string{"unix", "shm-ring"} {
		tr, err := all.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		o.Transports = append(o.Transports, TransportSpec{Transport: tr, PeerSource: SourceServe})
	}
	o.Workloads = []string{"pingpong"}
	o.Sizes = []int{64}
	o.Duration = 30 * time.Second
	o.Warmup = 5 * time.Millisecond
	o.CaseTimeout = 2 * time.Second
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		for _, cs := range r.Plan() {
			var mu sync.Mutex
			pid := 0
			r.onPeerStart = func(p int) {
				mu.Lock()
				pid = p
				mu.Unlock()
			}
			r.onMeasure = func(start bool) {
				mu.Lock()
				p := pid
				mu.Unlock()
				if start && p != 0 {
					time.AfterFunc(50*time.Millisecond, func() { syscall.Kill(p, sig) })
				}
			}
			res, err := r.RunCase(context.Background(), cs, 0)
			mu.Lock()
			p := pid
			mu.Unlock()
			if err == nil || res.Status != StatusFailed {
				t.Errorf("%s, server sent %v: status %s, err %v; want failed", cs.Label(), sig, res.Status, err)
			}
			if sig == syscall.SIGSTOP && !strings.Contains(res.Reason, "timeout") {
				t.Errorf("%s, server stopped: reason %q, want a timeout", cs.Label(), res.Reason)
			}
			if sig == syscall.SIGKILL && !strings.Contains(res.Reason, "server process died") {
				t.Errorf("%s, server killed while measuring: reason %q, want it to name the server's death", cs.Label(), res.Reason)
			}
			if p == 0 || alive(p) {
				if p != 0 {
					syscall.Kill(p, syscall.SIGKILL)
				}
				t.Errorf("%s, server sent %v: server %d not started or still there after the case returned", cs.Label(), sig, p)
			}
		}
	}
	r.onPeerStart, r.onMeasure = nil, nil
}

// TestPeerSourceFileMappingByAddress: shm-ring[mapping=file], whose
// listener refuses to be dialed by address (a dialer could shrink the
// unsealable file and crash it), is measured under via=inherit and
// skipped, with the transport's reason, under via=address and via=serve,
// where it is no failure; no server is started for it.
func TestPeerSourceFileMappingByAddress(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	tr, err := all.Lookup("shm-ring")
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.Transports = []TransportSpec{{Transport: tr, Options: map[string]string{"mapping": "file"}}}
	o.PeerSources = PeerSources()
	o.Workloads = []string{"pingpong"}
	o.Sizes = []int{64}
	o.Count = 40
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	var started int
	r.onPeerStart = func(int) { started++ }
	recs := runAll(t, r)
	if len(recs.Results) != len(PeerSources()) {
		t.Fatalf("%d records, want %d", len(recs.Results), len(PeerSources()))
	}
	for _, res := range recs.Results {
		switch {
		case res.PeerSource == SourceInherit && res.Status != StatusOK:
			t.Errorf("via=%s: %s: %s", res.PeerSource, res.Status, res.Reason)
		case res.PeerSource != SourceInherit && (res.Status != StatusSkipped || !strings.Contains(res.Reason, "mapping=file") || !strings.Contains(res.Reason, "SIGBUS")):
			t.Errorf("via=%s: %s (%s), want skipped saying why", res.PeerSource, res.Status, res.Reason)
		}
	}
	if started != 1 {
		t.Errorf("%d processes started, want 1 (the inherit case's peer)", started)
	}
	if ents, err := os.ReadDir(os.Getenv("TMPDIR")); err != nil || len(ents) != 0 {
		t.Errorf("TMPDIR holds %d entries after the run (%v), want none", len(ents), err)
	}
}

// TestPeerSourceAddressListenFails: when the listener by address cannot
// be made (here a socket path longer than sun_path allows, from a long
// TMPDIR), the case fails with the transport's reason, which names the
// path once, and its private directory is removed.
func TestPeerSourceAddressListenFails(t *testing.T) {
	tmp := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	tr, err := all.Lookup("pipe")
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.Transports = []TransportSpec{{Transport: tr, PeerSource: SourceAddress}}
	o.Workloads = []string{"pingpong"}
	o.Sizes = []int{64}
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.RunCase(context.Background(), r.Plan()[0], 0)
	if err == nil || res.Status != StatusFailed {
		t.Fatalf("status %s, err %v; want failed", res.Status, err)
	}
	if n := strings.Count(res.Reason, tmp); n != 1 {
		t.Errorf("reason names the directory %d times, want once: %s", n, res.Reason)
	}
	if ents, err := os.ReadDir(tmp); err != nil || len(ents) != 0 {
		t.Errorf("TMPDIR holds %d entries after the case (%v), want none", len(ents), err)
	}
}

// TestProbeRemoteMissingPaths: a missing rendezvous is "nothing to
// measure", and a socket without the control socket a rendezvous has
// beside it (a unix server's, when -t names a rendezvous transport) asks
// whether a unix or tcp server listens there: both are ErrRemote and
// os.ErrNotExist, and name the missing path once.
func TestProbeRemoteMissingPaths(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "u")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ transport, addr, missing, want string }{
		{"shm-ring", filepath.Join(dir, "none"), filepath.Join(dir, "none"), "nothing listens there"},
		{"shm-ring", socket, socket + ".control", "; is a unix or tcp server listening at " + socket + "? give its transport with -t"},
		{"pipe", socket, socket + ".control", "; is a unix or tcp server listening at " + socket + "? give its transport with -t"},
	} {
		err := probe(t, tc.transport, tc.addr)
		if !errors.Is(err, ErrRemote) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("-t %s -connect %s: ProbeRemote = %v, want ErrRemote and os.ErrNotExist", tc.transport, tc.addr, err)
			continue
		}
		if msg := err.Error(); strings.Count(msg, tc.missing) != 1 || !strings.Contains(msg, tc.want) {
			t.Errorf("-t %s -connect %s: %q: want %s named once, and %q", tc.transport, tc.addr, msg, tc.missing, tc.want)
		}
	}
}

// TestViaDirOfKilledRun: the private directory a case makes for its
// address is named with the run's PID, and the next case to make one
// removes a directory whose run was killed before it could remove it.
func TestViaDirOfKilledRun(t *testing.T) {
	base := t.TempDir()
	t.Setenv("TMPDIR", base)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(base, viaDirPrefix+strconv.FormatInt(int64(dead.Process.Pid), 36)+"-1")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "s"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cr := &caseRun{}
	path, err := cr.privatePath()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(cr.dir)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the killed run's directory %s is still there (%v)", stale, err)
	}
	if want := viaDirPrefix + strconv.FormatInt(int64(os.Getpid()), 36) + "-"; !strings.HasPrefix(filepath.Base(filepath.Dir(path)), want) {
		t.Errorf("socket path %s: directory not named %s*", path, want)
	}
}

func TestTransportOpRepeatsNothing(t *testing.T) {
	base := errors.New("mapping 536875008 bytes: cannot allocate memory")
	cases := []struct {
		name, op string
		err      error
		want     string
	}{
		// The transport says its name and the operation: nothing to add.
		{"shm-ring", "listen", fmt.Errorf("shm-ring: listen: channel 4: %w", base), "shm-ring: listen: channel 4: " + base.Error()},
		{"tcp-localhost", "listen", fmt.Errorf("tcp-localhost: listen on 127.0.0.1:1: %w", base), "tcp-localhost: listen on 127.0.0.1:1: " + base.Error()},
		// The case's own step goes after the name.
		{"shm-ring", "by address", fmt.Errorf("shm-ring: listen: %w", base), "shm-ring: by address: listen: " + base.Error()},
		// An error without the name gets the step in front.
		{"shm-ring", "listen", base, "listen: " + base.Error()},
	}
	for _, c := range cases {
		err := transportOp(c.name, c.op, c.err)
		if got := err.Error(); got != c.want {
			t.Errorf("transportOp(%q, %q, %q) = %q, want %q", c.name, c.op, c.err, got, c.want)
		}
		if !errors.Is(err, base) {
			t.Errorf("transportOp(%q, %q, %q) lost the error it wraps", c.name, c.op, c.err)
		}
	}
}
