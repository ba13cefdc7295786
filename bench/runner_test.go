package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/hist"
	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
	"github.com/ipcbench/ipcbench/transports/all"
)

// testTransports returns every transport that is safe to use here:
// tcp-public and tcp-veth only inside the private namespace.
func testTransports(t testing.TB) []TransportSpec {
	var out []TransportSpec
	for _, tr := range all.List() {
		if (tr.Name() == "tcp-public" || tr.Name() == "tcp-veth") && !netns.HasHermeticNetwork() {
			t.Logf("%s left out: no private network namespace", tr.Name())
			continue
		}
		out = append(out, TransportSpec{Transport: tr})
	}
	return out
}

func testOptions(t testing.TB) Options {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Transports: testTransports(t),
		Sizes:      []int{64, 64 << 10},
		Duration:   80 * time.Millisecond,
		Warmup:     10 * time.Millisecond,
		Repeats:    1,
		Rate:       2000,
	}
	o.Peer.Path = exe
	return o
}

// TestEveryWorkloadOverEveryTransport runs each workload over each
// transport, between two processes, and checks that the records are
// complete and consistent.
func TestEveryWorkloadOverEveryTransport(t *testing.T) {
	o := testOptions(t)
	o.Workloads = Workloads()
	o.FaninConns = []int{3}
	// A count, not a duration: on a loaded machine a slow exchange (a new
	// connection across a veth link, a descheduled peer) could fill a short
	// measured interval, and this test checks behaviour, not speed.
	o.Count = 40
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	recs, err := r.Run(context.Background(), Header{Tool: "test"}, &out)
	results := recs.Results
	if err != nil {
		for _, res := range results {
			if res.Status != StatusOK {
				t.Errorf("%s %s %s: %s: %s", res.Workload, res.Transport, FormatSize(res.Size), res.Status, res.Reason)
			}
		}
		t.Fatalf("Run: %v", err)
	}
	if got, want := len(results), r.Total(); got != want {
		t.Fatalf("%d results, want %d", got, want)
	}
	seen := map[string]bool{}
	for _, res := range results {
		name := res.Workload + "/" + res.Transport + "/" + FormatSize(res.Size)
		seen[res.Workload+"/"+res.Transport] = true
		if res.Status != StatusOK {
			t.Errorf("%s: status %s: %s", name, res.Status, res.Reason)
			continue
		}
		if res.Messages <= 0 || res.DurationNS <= 0 || res.Bytes != res.Messages*int64(res.Size) {
			t.Errorf("%s: messages %d bytes %d duration %d", name, res.Messages, res.Bytes, res.DurationNS)
		}
		if res.Messages != o.Count { // fanin's 3 connections split 40 as 14, 13, 13
			t.Errorf("%s: %d messages measured; -n asked for exactly %d", name, res.Messages, o.Count)
		}
		if res.Errors != 0 {
			t.Errorf("%s: %d payload errors", name, res.Errors)
		}
		if res.Workload == "stream" {
			if res.Hist != "" {
				t.Errorf("%s: stream records a latency histogram", name)
			}
			continue
		}
		if res.LatencyKind != LatencyRoundTrip {
			t.Errorf("%s: latency kind %q", name, res.LatencyKind)
		}
		h, err := hist.Decode(res.Hist)
		if err != nil {
			t.Errorf("%s: histogram: %v", name, err)
			continue
		}
		if want := (res.Messages + int64(max(res.SampleEvery, 1)) - 1) / int64(max(res.SampleEvery, 1)); res.SampleEvery <= 1 && h.Count() != res.Messages || res.SampleEvery > 1 && (h.Count() < want/2 || h.Count() > res.Messages) {
			t.Errorf("%s: histogram counts %d, messages %d", name, h.Count(), res.Messages)
		}
		if res.Workload == "fanin" && res.Conns != 3 {
			t.Errorf("%s: conns %d", name, res.Conns)
		}
		if res.Workload == "rate" && res.Achieved <= 0 {
			t.Errorf("%s: achieved rate %v", name, res.Achieved)
		}
		if res.PeerUserNS+res.PeerSysNS <= 0 && res.BenchUserNS+res.BenchSysNS <= 0 {
			t.Errorf("%s: no CPU time recorded", name)
		}
	}
	for _, w := range Workloads() {
		for _, tr := range o.Transports {
			if !seen[w+"/"+tr.Transport.Name()] {
				t.Errorf("no result for %s over %s", w, tr.Label())
			}
		}
	}
	// The raw output is a header then one line per result, and reads back
	// as exactly the records Run returned.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(results)+1 {
		t.Fatalf("%d JSON lines for %d results", len(lines), len(results))
	}
	read, err := ReadRecords(&out, "out")
	if err != nil {
		t.Fatal(err)
	}
	if hdr := read.Header; hdr.Type != KindHeader || hdr.Version != RecordVersion || hdr.Options["repeats"] != "1" {
		t.Errorf("header %+v", hdr)
	}
	if !reflect.DeepEqual(read.Header, recs.Header) {
		t.Errorf("Run returned header %+v, wrote %+v", recs.Header, read.Header)
	}
	if !reflect.DeepEqual(read.Results, recs.Results) {
		t.Errorf("Run returned results that differ from those it wrote:\n%+v\n%+v", recs.Results, read.Results)
	}
}

func TestDelimitedAndFixedFraming(t *testing.T) {
	for _, mode := range []frame.Mode{frame.Delimited, frame.Fixed} {
		t.Run(mode.String(), func(t *testing.T) {
			o := testOptions(t)
			o.Transports = o.Transports[:1]
			o.Workloads = []string{"pingpong"}
			if mode == frame.Delimited {
				o.Workloads = append(o.Workloads, "stream")
			}
			o.Frame = frame.Config{Mode: mode}
			r, err := NewRunner(o)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := r.Run(context.Background(), Header{}, &bytes.Buffer{})
			for _, res := range recs.Results {
				if res.Status != StatusOK {
					t.Errorf("%s %d: %s", res.Workload, res.Size, res.Reason)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	base := testOptions(t)
	shmRing, err := all.Lookup("shm-ring")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		field string // the OptionError's Field
		mod   func(*Options)
	}{
		{"no transports", "Transports", func(o *Options) { o.Transports = nil }},
		{"unknown workload", "Workloads", func(o *Options) { o.Workloads = []string{"nope"} }},
		{"size too large", "Sizes", func(o *Options) { o.Sizes = []int{MaxMessageSize + 1} }},
		{"negative duration", "Duration", func(o *Options) { o.Duration = -time.Second }},
		{"negative repeats", "Repeats", func(o *Options) { o.Repeats = -1 }},
		{"bad conns", "FaninConns", func(o *Options) { o.FaninConns = []int{0} }},
		{"bad rate", "Rate", func(o *Options) { o.Rate = -3 }},
		{"rate over the maximum", "Rate", func(o *Options) { o.Rate = MaxRate + 1 }},
		{"size given twice", "Sizes", func(o *Options) { o.Sizes = []int{1024, 64, 1024} }},
		{"workload given twice", "Workloads", func(o *Options) { o.Workloads = []string{"pingpong", "pingpong"} }},
		{"conns over the maximum", "FaninConns", func(o *Options) { o.FaninConns = []int{MaxFaninConns + 1} }},
		{"conns given twice", "FaninConns", func(o *Options) { o.FaninConns = []int{4, 4} }},
		{"placement given twice", "Placements", func(o *Options) { o.Placements = []Placement{{Name: "unpinned"}, {Name: "unpinned"}} }},
		{"peer model given twice", "PeerModels", func(o *Options) { o.PeerModels = []string{"thread", "thread"} }},
		{"unknown peer source", "PeerSources", func(o *Options) { o.PeerSources = []string{"fork"} }},
		{"transport given twice", "Transports", func(o *Options) { o.Transports = append(o.Transports, o.Transports[0]) }},
		{"negative buffer", "BufferSize", func(o *Options) { o.BufferSize = -1 }},
		{"server model of a remote peer", "Remote", func(o *Options) {
			o.Transports, o.PeerModels, o.Remote = o.Transports[:1], []string{"thread"}, &Remote{Address: "127.0.0.1:1"}
		}},
		{"placement of a remote peer", "Placements", func(o *Options) {
			o.Transports, o.Placements, o.Remote = o.Transports[:1], []Placement{{Name: "cpus=0/0", Bench: []int{0}, Peer: []int{0}}}, &Remote{Address: "127.0.0.1:1"}
		}},
		{"buffer of a remote peer", "BufferSize", func(o *Options) {
			o.Transports, o.BufferSize, o.Remote = o.Transports[:1], 64<<10, &Remote{Address: "127.0.0.1:1"}
		}},
		{"listener-only option of a remote peer", "Transports", func(o *Options) {
			o.Transports, o.Remote = []TransportSpec{{Transport: shmRing, Options: map[string]string{"mapping": "file"}}}, &Remote{Address: "/nonexistent/s"}
		}},
		{"count fewer than fanin's connections", "Count", func(o *Options) {
			o.Workloads, o.FaninConns, o.Count, o.Duration = []string{"pingpong", "fanin"}, []int{2, 8}, 7, 0
		}},
		// The upper bounds: nothing the runner adds or multiplies of them
		// overflows (a case timeout of -2562047h, "12 of -2 cases").
		{"duration over a day", "Duration", func(o *Options) { o.Duration = MaxDuration + 1 }},
		{"duration that overflows the timeout", "Duration", func(o *Options) { o.Duration = 2562047*time.Hour + 47*time.Minute + 10*time.Second }},
		{"warm-up over a day", "Warmup", func(o *Options) { o.Warmup = MaxDuration + 1 }},
		{"case timeout over its maximum", "CaseTimeout", func(o *Options) { o.CaseTimeout = MaxCaseTimeout + 1 }},
		{"repeats over the maximum", "Repeats", func(o *Options) { o.Repeats = MaxRepeats + 1 }},
		{"repeats that overflow the total", "Repeats", func(o *Options) { o.Repeats = math.MaxInt }},
		{"count over the maximum", "Count", func(o *Options) { o.Count = MaxCount + 1 }},
		{"count of MaxInt64", "Count", func(o *Options) { o.Count = math.MaxInt64 }},
		// Only pingpong, fanin, connect and rate run against an echo server.
		{"stream against an echo server", "Workloads", func(o *Options) {
			o.Workloads, o.Remote = []string{"pingpong", "stream"}, &Remote{Address: "127.0.0.1:1", Echo: true}
		}},
		{"http against an echo server", "Workloads", func(o *Options) {
			o.Workloads, o.Remote = []string{"http"}, &Remote{Address: "127.0.0.1:1", Echo: true}
		}},
	}
	for _, c := range cases {
		o := base
		c.mod(&o)
		_, err := NewRunner(o)
		var oe *OptionError
		switch {
		case !errors.Is(err, ErrBadOptions):
			t.Errorf("%s: err = %v, want ErrBadOptions", c.name, err)
		case !errors.As(err, &oe) || oe.Field != c.field:
			t.Errorf("%s: err = %#v, want an *OptionError for %s", c.name, err, c.field)
		case strings.Contains(oe.Err.Error(), ErrBadOptions.Error()):
			t.Errorf("%s: OptionError.Err %q repeats %q", c.name, oe.Err, ErrBadOptions)
		}
	}
	// Every echo workload is accepted against an echo server.
	o := base
	o.Workloads, o.Remote = EchoWorkloads(), &Remote{Address: "127.0.0.1:1", Echo: true}
	if got := strings.Join(o.Workloads, ","); got != "pingpong,fanin,connect,rate" {
		t.Errorf("EchoWorkloads() = %s, want pingpong,fanin,connect,rate", got)
	}
	if _, err := NewRunner(o); err != nil {
		t.Errorf("the echo workloads against an echo server: %v", err)
	}
	// A count of one message per connection, and a remote peer with this
	// side pinned alone (no peer CPUs), are accepted.
	o = base
	o.Workloads, o.FaninConns, o.Count, o.Duration = []string{"pingpong", "fanin"}, []int{2, 8}, 8, 0
	if _, err := NewRunner(o); err != nil {
		t.Errorf("a count of fanin's largest connection count: %v", err)
	}
	o = base
	o.Transports, o.Placements, o.Remote = o.Transports[:1], []Placement{{Name: "unpinned"}}, &Remote{Address: "127.0.0.1:1"}
	if _, err := NewRunner(o); err != nil {
		t.Errorf("a remote peer, unpinned: %v", err)
	}
	// Every maximum itself is accepted.
	o = base
	o.Duration, o.Warmup, o.CaseTimeout, o.Repeats, o.Count = MaxDuration, MaxDuration, MaxCaseTimeout, MaxRepeats, MaxCount
	r, err := NewRunner(o)
	if err != nil {
		t.Fatalf("the maxima: %v", err)
	}
	if r.Total() != len(r.Plan())*MaxRepeats {
		t.Errorf("the maxima: %d case runs, want %d", r.Total(), len(r.Plan())*MaxRepeats)
	}
	o.CaseTimeout, o.Count = 0, 0
	if r, err = NewRunner(o); err != nil {
		t.Fatalf("the maxima without a count: %v", err)
	}
	if got, want := r.Options().CaseTimeout, 2*MaxDuration+15*time.Second; got != want {
		t.Errorf("the maxima: default case timeout %v, want %v", got, want)
	}
}

func TestParsePlacement(t *testing.T) {
	for _, c := range []struct {
		in, name string
		bench    []int
		err      bool
	}{
		{"unpinned", "unpinned", nil, false},
		{"", "unpinned", nil, false},
		{"same-core", "same-core", []int{0}, false},
		{"cross-core", "cross-core", []int{0}, false},
		{"0/1", "cpus=0/1", []int{0}, false},
		{"0-1/1", "cpus=0-1/1", []int{0, 1}, false},
		{"nowhere", "", nil, true},
		{"x/1", "", nil, true},
	} {
		p, err := ParsePlacement(c.in)
		if c.err {
			if !errors.Is(err, ErrBadOptions) {
				t.Errorf("%q: err %v", c.in, err)
			}
			continue
		}
		if err != nil || p.Name != c.name || len(p.Bench) != len(c.bench) {
			t.Errorf("%q: %+v %v", c.in, p, err)
		}
	}
}

// TestPlacementPinned checks that a pinned case records where both ends
// actually ran, and that it is where they were pinned.
func TestPlacementPinned(t *testing.T) {
	o := testOptions(t)
	o.Transports = o.Transports[:1]
	o.Workloads = []string{"pingpong"}
	o.Sizes = []int{64}
	pl, _ := ParsePlacement("same-core")
	o.Placements = []Placement{pl}
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.Run(context.Background(), Header{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	res := recs.Results[0]
	if res.Placement != "same-core" || res.Status != StatusOK {
		t.Fatalf("%+v", res)
	}
	for _, s := range []string{res.BenchCPUs, res.PeerCPUs} {
		for _, part := range strings.Split(s, ",") {
			if part != "" && !strings.HasPrefix(part, "0:") {
				t.Errorf("pinned to CPU 0 but seen on %q (bench %q peer %q)", part, res.BenchCPUs, res.PeerCPUs)
			}
		}
	}
}

// TestLineProbe: a case whose messages cross CPUs records the cache line
// round trip between them, before and after its measured interval, and
// which CPUs it was; one pinned to a single CPU records none.
func TestLineProbe(t *testing.T) {
	allowed, err := sysinfo.Affinity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) < 2 || allowed[0] != 0 || allowed[1] != 1 {
		t.Skipf("needs CPUs 0 and 1, has %v", allowed)
	}
	o := testOptions(t)
	o.Transports = o.Transports[:1]
	o.Workloads = []string{"pingpong"}
	o.Sizes = []int{64}
	o.Placements = nil
	// The serve source's server is this machine's too: probed as the
	// inherited peer is.
	o.PeerSources = []string{SourceInherit, SourceServe}
	for _, name := range []string{"unpinned", "cross-core", "same-core"} {
		pl, err := ParsePlacement(name)
		if err != nil {
			t.Fatal(err)
		}
		o.Placements = append(o.Placements, pl)
	}
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	recs := runAll(t, r)
	probed := map[string]int{}
	for _, res := range recs.Results {
		if res.Placement == "same-core" {
			if res.LineRTTNS != 0 || res.LineRTTEndNS != 0 || res.LineRTTCPUs != "" {
				t.Errorf("same-core: line round trip %d/%d ns between %q, want none", res.LineRTTNS, res.LineRTTEndNS, res.LineRTTCPUs)
			}
			continue
		}
		// The probe gives up when a CPU is busy for longer than its
		// limit: on a loaded machine a figure may be missing, never
		// made up.
		if res.LineRTTNS < 0 || res.LineRTTEndNS < 0 || res.LineRTTNS >= lineProbeLimit.Nanoseconds() || res.LineRTTEndNS >= lineProbeLimit.Nanoseconds() {
			t.Errorf("%s: line round trip %d/%d ns", res.Placement, res.LineRTTNS, res.LineRTTEndNS)
		}
		if res.LineRTTNS == 0 && res.LineRTTEndNS == 0 {
			t.Logf("%s: no line round trip recorded (the probe gave up)", res.Placement)
			continue
		}
		probed[res.PeerSource]++
		if res.LineRTTCPUs != "0,1" {
			t.Errorf("%s: line round trip between CPUs %q, want 0,1", res.Placement, res.LineRTTCPUs)
		}
	}
	for _, src := range o.PeerSources {
		if probed[src] == 0 {
			t.Errorf("no %s case recorded a line round trip: all four probes gave up", src)
		}
	}
	// Pinning was undone, and every thread, the probes' among them, may
	// run on every CPU again.
	want := sysinfo.FormatCPUList(allowed)
	files, _ := filepath.Glob("/proc/self/task/*/status")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				cpus, err := sysinfo.ParseCPUList(strings.TrimSpace(v))
				if got := sysinfo.FormatCPUList(cpus); err != nil || got != want {
					t.Errorf("after the run, %s: CPUs %s (%v), want %s", f, got, err, want)
				}
			}
		}
	}
}

// TestPeerStartFails runs with a peer executable that does not exist:
// every case is recorded as failed, and Run's error wraps ErrPeerStart; each
// says so once, not once per package it passed through.
func TestPeerStartFails(t *testing.T) {
	o := testOptions(t)
	o.Transports = o.Transports[:1]
	o.Sizes = o.Sizes[:1]
	o.Peer.Path = t.TempDir() + "/no-such-peer"
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.Run(context.Background(), Header{Tool: "test"}, io.Discard)
	if !errors.Is(err, ErrPeerStart) {
		t.Fatalf("Run = %v, want ErrPeerStart", err)
	}
	if n := strings.Count(err.Error(), ErrPeerStart.Error()); n != 1 {
		t.Errorf("error %q says %q %d times, want once", err, ErrPeerStart, n)
	}
	if len(recs.Results) != r.Total() {
		t.Errorf("%d results for %d planned case runs: every case must be recorded", len(recs.Results), r.Total())
	}
	for _, res := range recs.Results {
		if n := strings.Count(res.Reason, ErrPeerStart.Error()); res.Status != StatusFailed || n != 1 {
			t.Errorf("%s: status %s, reason %q; want failed, naming %q once", res.Workload, res.Status, res.Reason, ErrPeerStart)
		}
	}
}

// TestHeaderRecordsGivenCaseTimeout: a case timeout given in Options is
// recorded among the header's options (it decides which cases fail); the
// default, which follows from the others, is not.
func TestHeaderRecordsGivenCaseTimeout(t *testing.T) {
	for _, given := range []time.Duration{0, 42 * time.Second} {
		o := testOptions(t)
		o.CaseTimeout = given
		r, err := NewRunner(o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the header, and no case
		recs, _ := r.Run(ctx, Header{Tool: "test"}, io.Discard)
		if recs == nil {
			t.Fatalf("case timeout %v: no records", given)
		}
		got, ok := recs.Header.Options["case_timeout"]
		switch {
		case given == 0 && ok:
			t.Errorf("the default case timeout recorded as %q", got)
		case given > 0 && got != "42s":
			t.Errorf("case timeout %v recorded as %q (present: %v); want 42s", given, got, ok)
		}
	}
}

// TestNothingMeasured: a run whose every case is skipped (here unix by
// address, which is the inherit case) returns an error wrapping
// ErrNothingMeasured, not ErrCasesFailed, naming the first case's reason;
// one case measured besides the skipped ones makes it a run like any
// other.
func TestNothingMeasured(t *testing.T) {
	unix, err := all.Lookup("unix")
	if err != nil {
		t.Fatal(err)
	}
	for _, sources := range [][]string{{SourceAddress}, {SourceInherit, SourceAddress}} {
		o := testOptions(t)
		o.Transports = []TransportSpec{{Transport: unix}}
		o.Workloads = []string{"pingpong"}
		o.Sizes = o.Sizes[:1]
		o.Repeats = 2
		o.PeerSources = sources
		r, err := NewRunner(o)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := r.Run(context.Background(), Header{Tool: "test"}, io.Discard)
		if len(sources) > 1 {
			if err != nil {
				t.Errorf("sources %v: Run = %v, want nil", sources, err)
			}
			continue
		}
		if !errors.Is(err, ErrNothingMeasured) || errors.Is(err, ErrCasesFailed) {
			t.Fatalf("sources %v: Run = %v, want ErrNothingMeasured alone", sources, err)
		}
		if !strings.Contains(err.Error(), "all 2 case runs were skipped") || !strings.Contains(err.Error(), "is the via=inherit case") {
			t.Errorf("error %q does not say how many were skipped and why", err)
		}
		if len(recs.Results) != 2 {
			t.Errorf("%d results, want the 2 skipped ones", len(recs.Results))
		}
	}
}

// TestLineCPUs: the probe's two CPUs under each placement: the bench's
// first and the peer's first other than it; none when both ends share
// their only CPU.
func TestLineCPUs(t *testing.T) {
	for _, tc := range []struct {
		placement string
		a, b      int
		ok        bool
	}{
		{"cross-core", 0, 1, true},
		{"same-core", 0, 0, false},
		{"0/0", 0, 0, false},
		{"0-1/0-1", 0, 1, true},
		{"0/0-1", 0, 1, true},
		{"0-1/0", 1, 0, true},
		{"2,3/0,1", 2, 0, true},
	} {
		pl, err := ParsePlacement(tc.placement)
		if err != nil {
			t.Fatal(err)
		}
		a, b, ok := lineCPUs(pl)
		if ok != tc.ok || ok && (a != tc.a || b != tc.b) {
			t.Errorf("%s: CPUs %d and %d (%v), want %d and %d (%v)", tc.placement, a, b, ok, tc.a, tc.b, tc.ok)
		}
	}
}
