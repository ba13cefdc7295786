package report

import (
	"bytes"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/hist"
)

// update rewrites the committed test inputs and golden files:
//
//	go test ./bench/report -update
var update = flag.Bool("update", false, "rewrite testdata/*.jsonl and testdata/*.golden")

// synthCase describes one synthetic case: a base value per repeat
// (round-trip ns for latency workloads, MB/s or msg/s otherwise) and what
// goes wrong.
type synthCase struct {
	workload, transport, variant string
	size, conns, rate            int
	base                         float64           // round-trip ns (latency) or msg/s (no latency)
	repeatBase                   map[int]float64   // per-repeat override of base (bimodal cases)
	skip                         string            // every repeat skipped with this reason
	fail                         map[int]string    // repeats that fail, with their reason
	options                      map[string]string // transport options in effect
	cpus                         map[int][2]string // per-repeat bench/peer CPUs; default 0,1 / 1
}

// synthCases is the synthetic suite: five transports and one variant, every
// workload, a bimodal case, a partly failed case and skipped cases.
func synthCases(second bool) []synthCase {
	tcpOpts := map[string]string{"nodelay": "true", "sndbuf": "2626560"}
	ndOpts := map[string]string{"nodelay": "false", "sndbuf": "2626560"}
	unixOpts := map[string]string{"sndbuf": "212992"}
	pipeOpts := map[string]string{"pipe_size": "65536"}
	shmOpts := map[string]string{"ring_bytes": "1048576", "wait": "futex"}
	shm64 := 3000.0
	if second {
		shm64 = 2400
	}
	cs := []synthCase{
		{workload: "pingpong", transport: "tcp-localhost", size: 64, conns: 1, base: 18000, options: tcpOpts},
		{workload: "pingpong", transport: "tcp-public", size: 64, conns: 1, base: 18100, options: tcpOpts},
		{workload: "pingpong", transport: "unix", size: 64, conns: 1, base: 12000, options: unixOpts,
			repeatBase: map[int]float64{0: 5000, 2: 5100},
			cpus:       map[int][2]string{0: {"0", "0"}, 2: {"1", "1"}}},
		{workload: "pingpong", transport: "pipe", size: 64, conns: 1, base: 9000, options: pipeOpts},
		{workload: "pingpong", transport: "shm-lock", size: 64, conns: 1, base: shm64, options: shmOpts},
		{workload: "pingpong", transport: "tcp-localhost", variant: "nodelay=false", size: 64, conns: 1, base: 18500, options: ndOpts},

		{workload: "pingpong", transport: "tcp-localhost", size: 65536, conns: 1, base: 60000, options: tcpOpts},
		{workload: "pingpong", transport: "tcp-public", size: 65536, conns: 1, base: 75000, options: tcpOpts},
		{workload: "pingpong", transport: "unix", size: 65536, conns: 1, base: 30000, options: unixOpts},
		{workload: "pingpong", transport: "pipe", size: 65536, conns: 1, base: 40000, options: pipeOpts},
		{workload: "pingpong", transport: "shm-lock", size: 65536, conns: 1, base: 20000, options: shmOpts,
			fail: map[int]string{3: "shm-lock: peer died: signal: killed"}},
		{workload: "pingpong", transport: "tcp-localhost", variant: "nodelay=false", size: 65536, conns: 1, base: 61000, options: ndOpts},

		{workload: "stream", transport: "tcp-localhost", size: 65536, conns: 1, base: 30500, options: tcpOpts},
		{workload: "stream", transport: "tcp-public", size: 65536, conns: 1, base: 30400, options: tcpOpts},
		{workload: "stream", transport: "unix", size: 65536, conns: 1, base: 45800, options: unixOpts},
		{workload: "stream", transport: "pipe", size: 65536, conns: 1, base: 38100, options: pipeOpts},
		{workload: "stream", transport: "shm-lock", size: 65536, conns: 1, base: 61000, options: shmOpts},

		{workload: "fanin", transport: "tcp-localhost", size: 64, conns: 4, base: 300000, options: tcpOpts},
		{workload: "fanin", transport: "tcp-public", size: 64, conns: 4, skip: "tcp-public: no usable non-loopback address: transport unavailable"},
		{workload: "fanin", transport: "unix", size: 64, conns: 4, base: 450000, options: unixOpts},
		{workload: "fanin", transport: "pipe", size: 64, conns: 4, base: 445000, options: pipeOpts},
		{workload: "fanin", transport: "shm-lock", size: 64, conns: 4, skip: "shm-lock: fanin is not supported: transport unavailable"},

		{workload: "rate", transport: "tcp-localhost", size: 64, conns: 1, rate: 10000, base: 21000, options: tcpOpts},
		{workload: "rate", transport: "unix", size: 64, conns: 1, rate: 10000, base: 8000, options: unixOpts},

		{workload: "connect", transport: "tcp-localhost", size: 64, conns: 1, base: 40000, options: tcpOpts},
		{workload: "connect", transport: "unix", size: 64, conns: 1, base: 25000, options: unixOpts},
	}
	if second {
		// The second run drops pipe streams and adds a transport.
		var out []synthCase
		for _, c := range cs {
			if !(c.workload == "stream" && c.transport == "pipe") {
				out = append(out, c)
			}
		}
		out = append(out, synthCase{workload: "pingpong", transport: "unixpacket", size: 64, conns: 1, base: 11000, options: unixOpts})
		cs = out
	}
	return cs
}

// synthRun writes a deterministic synthetic raw-record file: the same
// seed gives the same bytes. The histograms are synthetic log-normal
// round-trip distributions with a 1% tail at 3×.
// The first run has 6 repeats (enough for bounded 95% intervals), the
// second 5 (unbounded, as benchstat reports them).
func synthRun(tb testing.TB, seed uint64, second bool) []byte {
	repeats := 6
	if second {
		repeats = 5
	}
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var buf bytes.Buffer
	enc := bench.NewRecordWriter(&buf)
	h := bench.Header{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(seed) * time.Hour),
		Tool: "ipcbench (synthetic test data)",
		Machine: map[string]string{
			"kernel": "6.1.0-test", "cpu_model": "Test CPU @ 2.00GHz", "cores": "2", "gomaxprocs": "2",
			"go_version": "go1.26.8", "goos": "linux", "goarch": "amd64", "clock_read_ns": "21",
			"clock_source": "tsc",
		},
		Network: "private-netns",
		Options: map[string]string{
			"transports": "tcp-localhost,tcp-public,unix,pipe,shm-lock", "workloads": "pingpong,stream,fanin,rate,connect",
			"sizes": "64B,64KiB", "fanin_conns": "4", "duration": "300ms", "warmup": "100ms", "repeats": strconv.Itoa(repeats),
			"rate": "10000", "placements": "unpinned", "framing": "length-prefix",
		},
		Command: []string{"ipcbench", "run", "--repeats", strconv.Itoa(repeats)},
	}
	if err := enc.WriteHeader(&h); err != nil {
		tb.Fatal(err)
	}
	for rep := 0; rep < repeats; rep++ {
		for _, c := range synthCases(second) {
			r := bench.Result{Workload: c.workload, Transport: c.transport, Variant: c.variant,
				Size: c.size, Conns: c.conns, Rate: c.rate, Placement: "unpinned", Repeat: rep, Status: bench.StatusOK}
			if c.skip != "" {
				r.Status, r.Reason = bench.StatusSkipped, c.skip
				if err := enc.WriteResult(&r); err != nil {
					tb.Fatal(err)
				}
				continue
			}
			if why, ok := c.fail[rep]; ok {
				r.Status, r.Reason = bench.StatusFailed, why
				if err := enc.WriteResult(&r); err != nil {
					tb.Fatal(err)
				}
				continue
			}
			base := c.base
			if b, ok := c.repeatBase[rep]; ok {
				base = b
			}
			noise := 1 + 0.03*rng.NormFloat64()
			r.DurationNS = 300_000_000 + int64(rng.IntN(200_000))
			sec := float64(r.DurationNS) / 1e9
			latency := c.workload == "pingpong" || c.workload == "rate" || c.workload == "connect"
			if latency {
				rt := base * noise
				hh := hist.New()
				for i := 0; i < 400; i++ {
					v := rt * math.Exp(0.08*rng.NormFloat64())
					if rng.IntN(100) == 0 {
						v *= 3
					}
					hh.Record(int64(v))
				}
				encoded, err := hh.Encode()
				if err != nil {
					tb.Fatal(err)
				}
				r.LatencyKind, r.Hist = bench.LatencyRoundTrip, encoded
				r.Messages = int64(sec * 1e9 / rt)
				if c.rate > 0 {
					r.Messages = int64(sec * float64(c.rate) * (0.995 + 0.004*rng.Float64()))
					r.Achieved = float64(r.Messages) / sec
				}
			} else {
				r.Messages = int64(sec * base * noise)
			}
			r.Bytes = r.Messages * int64(c.size)
			cpu := float64(r.Messages) * 2000 * (1 + 0.02*rng.NormFloat64())
			r.BenchUserNS, r.BenchSysNS = int64(cpu*0.2), int64(cpu*0.3)
			r.PeerUserNS, r.PeerSysNS = int64(cpu*0.2), int64(cpu*0.3)
			r.BenchCPUs, r.PeerCPUs = "0,1", "1"
			if w, ok := c.cpus[rep]; ok {
				r.BenchCPUs, r.PeerCPUs = w[0], w[1]
			}
			r.Options = c.options
			if err := enc.WriteResult(&r); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return buf.Bytes()
}

// testdataRuns are the committed synthetic inputs: name -> generator.
var testdataRuns = []struct {
	file   string
	seed   uint64
	second bool
}{
	{"run.jsonl", 1, false},
	{"run2.jsonl", 2, true},
}

// TestTestdata regenerates the committed raw files under -update and
// otherwise checks that the generator is deterministic and that the
// committed files read back.
func TestTestdata(t *testing.T) {
	if a, b := synthRun(t, 1, false), synthRun(t, 1, false); !bytes.Equal(a, b) {
		t.Fatal("synthetic run generator is not deterministic")
	}
	for _, td := range testdataRuns {
		t.Run(td.file, func(t *testing.T) {
			run := readTestRun(t, td.file) // rewrites the file under -update
			if len(run.Results) == 0 {
				t.Fatal("no results in committed test data")
			}
		})
	}
}

// testCache memoizes committed runs and their rendered reports, which
// several tests share: decoding every histogram is the slow part of the
// package's tests, especially under -race. Tests must not modify what it
// returns.
var testCache = struct {
	sync.Mutex
	runs     map[string]*bench.Records
	analysis *analysis // of run.jsonl
	rendered map[string][]byte
}{runs: map[string]*bench.Records{}, rendered: map[string][]byte{}}

// renderTestRun returns run.jsonl rendered in format, from one analysis of
// the run shared by all formats (Render analyses the runs and calls render).
func renderTestRun(tb testing.TB, format string) []byte {
	tb.Helper()
	run := readTestRun(tb, "run.jsonl")
	testCache.Lock()
	defer testCache.Unlock()
	if out, ok := testCache.rendered[format]; ok {
		return out
	}
	if testCache.analysis == nil {
		testCache.analysis = analyze(run)
	}
	var buf bytes.Buffer
	if err := render(&buf, format, []*analysis{testCache.analysis}); err != nil {
		tb.Fatalf("Render %s: %v", format, err)
	}
	testCache.rendered[format] = buf.Bytes()
	return buf.Bytes()
}

// readTestRun reads a committed synthetic run.
// Under -update it first regenerates the file, so that golden files are
// made from the current generator whatever order tests run in.
func readTestRun(tb testing.TB, file string) *bench.Records {
	tb.Helper()
	testCache.Lock()
	defer testCache.Unlock()
	if run, ok := testCache.runs[file]; ok {
		return run
	}
	if *update {
		for _, td := range testdataRuns {
			if td.file == file {
				if err := os.WriteFile(filepath.Join("testdata", file), synthRun(tb, td.seed, td.second), 0o644); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	run, err := bench.ReadRecordsFile(filepath.Join("testdata", file))
	if err != nil {
		tb.Fatalf("reading test data (regenerate with -update): %v", err)
	}
	testCache.runs[file] = run
	return run
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (create it with go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs from the golden file (rerun with -update if the change is intended)\n--- got ---\n%s", name, got)
	}
}
