package plot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/hist"
)

// update rewrites the golden SVGs: go test ./bench/plot -update
var update = flag.Bool("update", false, "rewrite testdata/*.svg.golden")

// testRun is the synthetic run committed for package report's golden
// tests (regenerated there with -update), read once.
var testRun = sync.OnceValues(func() (*bench.Records, error) {
	return bench.ReadRecordsFile(filepath.Join("..", "report", "testdata", "run.jsonl"))
})

func readTestRun(tb testing.TB) *bench.Records {
	tb.Helper()
	r, err := testRun()
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// wantCharts are the charts drawn from the test run.
var wantCharts = []string{
	"pingpong-p50-vs-size-unpinned.svg",
	"pingpong-cdf-64B-unpinned.svg",
	"pingpong-cdf-64KiB-unpinned.svg",
	"stream-mbps-vs-size-unpinned.svg",
	"fanin-rate-vs-conns-unpinned.svg",
}

// TestWrite draws the test run twice and checks the charts: the expected
// files, byte-identical between the two writes and equal to the golden
// files, well-formed SVG whose titles, axes and legends say what they show,
// and the file modes of every output.
func TestWrite(t *testing.T) {
	run := readTestRun(t)
	dir := filepath.Join(t.TempDir(), "new", "plots")
	paths, err := Write(dir, false, run)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Write(t.TempDir(), false, run)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
		if filepath.Dir(p) != dir {
			t.Errorf("%s is not in %s", p, dir)
		}
	}
	if !slices.Equal(names, wantCharts) || len(again) != len(paths) {
		t.Fatalf("charts %v, want %v", names, wantCharts)
	}
	t.Run("deterministic", func(t *testing.T) {
		for i := range paths {
			x, _ := os.ReadFile(paths[i])
			y, _ := os.ReadFile(again[i])
			if len(x) == 0 || !bytes.Equal(x, y) {
				t.Errorf("%s: two writes differ", names[i])
			}
		}
	})
	t.Run("golden", func(t *testing.T) {
		for _, p := range paths {
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", filepath.Base(p)+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (create it with go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (rerun with -update if the change is intended)", p, golden)
			}
		}
	})
	t.Run("content", func(t *testing.T) {
		want := map[string][]string{
			"pingpong-p50-vs-size-unpinned.svg": {"round trip", "message size", "placement unpinned", "network private-netns",
				"64B", "64KiB", "tcp-localhost[nodelay=false]", "unix (bimodal at 64B)", "µs"},
			"pingpong-cdf-64B-unpinned.svg":    {"pingpong 64B", "round trip", "percentile", "99.9%", "placement unpinned", "round trips)"},
			"pingpong-cdf-64KiB-unpinned.svg":  {"pingpong 64KiB", "shm-lock"},
			"stream-mbps-vs-size-unpinned.svg": {"stream", "MB/s", "placement unpinned", "64KiB"},
			"fanin-rate-vs-conns-unpinned.svg": {"fanin", "connections", "unix", "pipe"},
		}
		for _, p := range paths {
			name := filepath.Base(p)
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			texts, root, err := svgTexts(f)
			f.Close()
			if err != nil {
				t.Errorf("%s is not well-formed XML: %v", name, err)
				continue
			}
			if root != "svg" {
				t.Errorf("%s: root element %q, want svg", name, root)
			}
			all := strings.Join(texts, "\n")
			for _, w := range want[name] {
				if !strings.Contains(all, w) {
					t.Errorf("%s: no text %q in %q", name, w, texts)
				}
			}
		}
	})
	t.Run("permissions", func(t *testing.T) {
		// The one rule for outputs the user asked for (as for raw records),
		// less what the umask takes away.
		mask := umask(t)
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if want := bench.OutputDirMode &^ mask; st.Mode().Perm() != want {
			t.Errorf("directory mode %v, want %v", st.Mode().Perm(), want)
		}
		for _, p := range paths {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if want := bench.OutputFileMode &^ mask; st.Mode().Perm() != want {
				t.Errorf("%s mode %v, want %v", p, st.Mode().Perm(), want)
			}
		}
	})
}

// umask returns this process's file mode creation mask, read from
// /proc/self/status so that reading it does not change it.
func umask(tb testing.TB) os.FileMode {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				tb.Fatal(err)
			}
			return os.FileMode(m)
		}
	}
	tb.Fatal("no Umask line in /proc/self/status")
	return 0
}

// svgTexts decodes an SVG document and returns its text elements and the
// name of its root element.
func svgTexts(r io.Reader) (texts []string, root string, err error) {
	d := xml.NewDecoder(r)
	inText := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return texts, root, nil
		}
		if err != nil {
			return nil, "", err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
			inText = tok.Name.Local == "text"
		case xml.EndElement:
			inText = false
		case xml.CharData:
			if inText {
				texts = append(texts, string(tok))
			}
		}
	}
}

// okResult returns one OK pingpong or stream result.
func okResult(tb testing.TB, workload, transport, placement string, size, rep int, rtNS int64) bench.Result {
	tb.Helper()
	r := bench.Result{Type: bench.KindResult, Workload: workload, Transport: transport, Size: size, Conns: 1,
		Placement: placement, Repeat: rep, Status: bench.StatusOK, DurationNS: 1e9, Messages: 1000, Bytes: int64(size) * 1000}
	if rtNS > 0 {
		h := hist.New()
		h.Record(rtNS)
		h.Record(rtNS * 2)
		enc, err := h.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		r.LatencyKind, r.Hist = bench.LatencyRoundTrip, enc
	}
	return r
}

func TestWriteRunsAndPlacements(t *testing.T) {
	var rs []bench.Result
	for rep := 0; rep < 3; rep++ {
		for _, pl := range []string{"same-core", "cpus=0/1"} {
			rs = append(rs, okResult(t, "pingpong", "unix", pl, 64, rep, 5000), okResult(t, "pingpong", "unix", pl, 4096, rep, 9000))
		}
	}
	a := &bench.Records{Source: "results/a.jsonl", Results: rs}
	b := &bench.Records{Source: "b.jsonl", Results: rs[:2]}
	paths, err := Write(t.TempDir(), false, a, b)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	want := []string{
		"run1-a-pingpong-p50-vs-size-same-core.svg",
		"run1-a-pingpong-cdf-64B-same-core.svg",
		"run1-a-pingpong-cdf-4KiB-same-core.svg",
		"run1-a-pingpong-p50-vs-size-cpus=0_1.svg",
		"run1-a-pingpong-cdf-64B-cpus=0_1.svg",
		"run1-a-pingpong-cdf-4KiB-cpus=0_1.svg",
		"run2-b-pingpong-p50-vs-size-same-core.svg",
		"run2-b-pingpong-cdf-64B-same-core.svg",
		"run2-b-pingpong-cdf-4KiB-same-core.svg",
	}
	if !slices.Equal(names, want) {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
}

func TestWriteErrors(t *testing.T) {
	failed := &bench.Records{Source: "f", Results: []bench.Result{
		{Type: bench.KindResult, Workload: "pingpong", Transport: "unix", Size: 64, Conns: 1, Placement: "unpinned", Status: bench.StatusFailed, Reason: "peer died"},
	}}
	onlyConnect := &bench.Records{Source: "c", Results: []bench.Result{okResult(t, "connect", "unix", "unpinned", 64, 0, 1000)}}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	good := &bench.Records{Source: "g", Results: []bench.Result{okResult(t, "stream", "unix", "unpinned", 64, 0, 0)}}
	tests := []struct {
		name string
		dir  string
		runs []*bench.Records
		want error
	}{
		{"no runs", t.TempDir(), nil, ErrNoRuns},
		{"nil run", t.TempDir(), []*bench.Records{good, nil}, ErrNoRuns},
		{"only failures", t.TempDir(), []*bench.Records{failed}, ErrNoData},
		{"nothing drawable", t.TempDir(), []*bench.Records{onlyConnect}, ErrNoData},
		{"directory is a file", filepath.Join(file, "sub"), []*bench.Records{good}, syscall.ENOTDIR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paths, err := Write(tt.dir, false, tt.runs...)
			if err == nil {
				t.Fatalf("Write succeeded: %v", paths)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			entries, _ := os.ReadDir(tt.dir)
			if len(entries) != 0 {
				t.Errorf("files left behind: %v", entries)
			}
		})
	}
}

func TestNSTicks(t *testing.T) {
	tests := []struct {
		min, max float64
		labels   []string
	}{
		{1500, 90000, []string{"2µs", "5µs", "10µs", "20µs", "50µs"}},
		{800, 5e6, []string{"1µs", "10µs", "100µs", "1ms"}},
		{0, 10, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range nsTicks(tt.min, tt.max) {
			if tk.Value < tt.min || tk.Value > tt.max {
				t.Errorf("tick %v outside [%v, %v]", tk.Value, tt.min, tt.max)
			}
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if !slices.Equal(got, tt.labels) {
			t.Errorf("nsTicks(%v, %v) labels %v, want %v", tt.min, tt.max, got, tt.labels)
		}
	}
}

func TestSizeTicks(t *testing.T) {
	ts := sizeTicks([]int{64, 1500, 65536}).Ticks(40, 100000)
	var labels []string
	minor := 0
	for i, tk := range ts {
		if i > 0 && tk.Value < ts[i-1].Value {
			t.Errorf("ticks out of order at %v", tk.Value)
		}
		if tk.Label == "" {
			minor++
		} else {
			labels = append(labels, tk.Label)
		}
	}
	if !slices.Equal(labels, []string{"64B", "1500B", "64KiB"}) || minor == 0 {
		t.Errorf("labels %v, %d minor ticks", labels, minor)
	}
}

func TestPercentileTicks(t *testing.T) {
	var got []string
	for _, tk := range percentileTicks(0, 4.2) {
		got = append(got, tk.Label)
		if math.IsNaN(tk.Value) {
			t.Error("NaN tick")
		}
	}
	want := []string{"0%", "50%", "90%", "99%", "99.9%", "99.99%"}
	if !slices.Equal(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
}

func TestTickNS(t *testing.T) {
	for in, want := range map[float64]string{2000: "2µs", 100000: "100µs", 500: "500ns", 1e7: "10ms", 1500: "1.5µs"} {
		if got := tickNS(in); got != want {
			t.Errorf("tickNS(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestWriteRefusesExisting plants a symbolic link to a victim file under
// the name of a chart: Write refuses, with or without replace, writes no
// chart and leaves the victim alone; a regular file of that name is
// replaced only with replace.
func TestWriteRefusesExisting(t *testing.T) {
	good := &bench.Records{Source: "g", Results: []bench.Result{okResult(t, "stream", "unix", "unpinned", 64, 0, 0)}}
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(dir, "stream-mbps-vs-size-unpinned.svg")
	if err := os.Symlink(victim, chart); err != nil {
		t.Fatal(err)
	}
	for _, replace := range []bool{false, true} {
		if paths, err := Write(dir, replace, good); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Write(replace=%v) over a symlink: %v, %v; want fs.ErrExist", replace, paths, err)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("victim now holds %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files written beside the refused one: %v", ents)
	}
	if err := os.Remove(chart); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(chart, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir, false, good); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Write over an existing chart: %v, want fs.ErrExist", err)
	}
	if _, err := Write(dir, true, good); err != nil {
		t.Fatalf("Write(replace=true): %v", err)
	}
	if st, err := os.Stat(chart); err != nil || st.Mode().Perm() != bench.OutputFileMode&^umask(t) || st.Size() < 100 {
		t.Errorf("replaced chart: %v %v", st, err)
	}
}

// TestWriteRemovesDirItMade: when no chart can be written (here the path
// of every chart is too long for the system, though the directory's is
// not), the directories Write made for them are gone again.
func TestWriteRemovesDirItMade(t *testing.T) {
	root := t.TempDir()
	dir := root
	for len(dir) < 4080 {
		dir = filepath.Join(dir, strings.Repeat("d", min(200, 4080-len(dir))))
	}
	good := &bench.Records{Source: "g", Results: []bench.Result{okResult(t, "stream", "unix", "unpinned", 64, 0, 0)}}
	if paths, err := Write(dir, false, good); err == nil {
		t.Fatalf("Write into a directory whose charts' paths are too long succeeded: %v", paths)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("left behind in %s: %v", root, entries)
	}
}

// TestWriteFaninSizesAndSizeZero: fanin records at two sizes (joined from
// two runs) get a chart each, named with the size (the second size was
// dropped without a word); a pingpong case of size 0, which only foreign
// records hold, is left out of the log-scale chart instead of failing
// every chart; a sampled repeat's legend says how many round trips were
// timed.
func TestWriteFaninSizesAndSizeZero(t *testing.T) {
	var rs []bench.Result
	for rep := 0; rep < 2; rep++ {
		for _, size := range []int{64, 4096} {
			for _, conns := range []int{1, 4} {
				r := okResult(t, "fanin", "unix", "unpinned", size, rep, 0)
				r.Conns = conns
				rs = append(rs, r)
			}
		}
		rs = append(rs, okResult(t, "pingpong", "unix", "unpinned", 0, rep, 3000), okResult(t, "pingpong", "unix", "unpinned", 64, rep, 5000))
	}
	rs[len(rs)-1].SampleEvery = 16
	dir := t.TempDir()
	paths, err := Write(dir, false, &bench.Records{Source: "x.jsonl", Results: rs})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	for _, want := range []string{"fanin-rate-vs-conns-64B-unpinned.svg", "fanin-rate-vs-conns-4KiB-unpinned.svg", "pingpong-p50-vs-size-unpinned.svg", "pingpong-cdf-64B-unpinned.svg"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s among %v", want, names)
		}
	}
	f, err := os.Open(filepath.Join(dir, "pingpong-cdf-64B-unpinned.svg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	texts, _, err := svgTexts(f)
	if err != nil {
		t.Fatal(err)
	}
	// Repeat 0 timed 2 of 2, repeat 1 2 of 32 (2 values, 1 in 16).
	if want := "unix (34 round trips, 4 of them timed)"; !slices.Contains(texts, want) {
		t.Errorf("legend %q not among %q", want, texts)
	}
}
