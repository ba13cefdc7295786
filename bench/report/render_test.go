package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/perf/benchfmt"

	"github.com/ipcbench/ipcbench/bench"
)

func TestRenderGolden(t *testing.T) {
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			golden(t, "run."+format+".golden", renderTestRun(t, format))
		})
	}
}

func TestRenderDefaultIsTable(t *testing.T) {
	if !bytes.Equal(renderTestRun(t, ""), renderTestRun(t, "table")) {
		t.Error(`format "" differs from "table"`)
	}
}

// smallRun returns a run of one pingpong case over two transports.
func smallRun(tb testing.TB, source string) *bench.Records {
	tb.Helper()
	rs := append(repeatsOf(tb, "unix", 5000, 5100, 5200), repeatsOf(tb, "pipe", 9000, 9100, 9200)...)
	return &bench.Records{Source: source, Results: rs}
}

func TestRenderTwoRuns(t *testing.T) {
	r1, r2 := smallRun(t, "first.jsonl"), smallRun(t, "second.jsonl")
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			var one, both bytes.Buffer
			if err := Render(&one, format, r1); err != nil {
				t.Fatal(err)
			}
			if err := Render(&both, format, r1, r2); err != nil {
				t.Fatal(err)
			}
			if both.Len() <= one.Len() {
				t.Errorf("two runs rendered in %d bytes, one in %d", both.Len(), one.Len())
			}
			first, second := strings.Index(both.String(), "first.jsonl"), strings.Index(both.String(), "second.jsonl")
			if first < 0 || second < first {
				t.Errorf("runs not named in order (first at %d, second at %d):\n%s", first, second, both.String())
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	run := &bench.Records{Source: "empty"}
	tests := []struct {
		name   string
		format string
		runs   []*bench.Records
		want   error
	}{
		{"unknown format", "yaml", []*bench.Records{run}, ErrUnknownFormat},
		{"no runs", "table", nil, ErrNoRuns},
		{"nil run", "csv", []*bench.Records{run, nil}, ErrNoRuns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Render(io.Discard, tt.format, tt.runs...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Render: %v, want %v", err, tt.want)
			}
		})
	}
}

// failingWriter fails every write.
type failingWriter struct{}

var errWrite = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestRenderWriteError(t *testing.T) {
	run := smallRun(t, "small.jsonl")
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			if err := Render(failingWriter{}, format, run); !errors.Is(err, errWrite) {
				t.Fatalf("Render to a failing writer: %v, want %v", err, errWrite)
			}
		})
	}
}

// TestRenderEmptyRun renders a run that holds only a header.
func TestRenderEmptyRun(t *testing.T) {
	run := &bench.Records{Source: "empty.jsonl", Header: readTestRun(t, "run.jsonl").Header}
	for _, format := range Formats() {
		var buf bytes.Buffer
		if err := Render(&buf, format, run); err != nil {
			t.Errorf("%s: %v", format, err)
		}
	}
}

// TestBenchfmtParses reads the benchfmt output with golang.org/x/perf's own
// reader: no syntax errors, every transport variant present as a /transport
// key, one result per OK repeat, the units present and the configuration
// carried.
func TestBenchfmtParses(t *testing.T) {
	run := readTestRun(t, "run.jsonl")
	buf := bytes.NewReader(renderTestRun(t, "benchfmt"))
	wantTransports := map[string]bool{}
	ok := 0
	for i := range run.Results {
		if run.Results[i].Status == "ok" {
			ok++
			wantTransports[run.Results[i].Case().TransportLabel()] = true
		}
	}
	gotTransports := map[string]bool{}
	units := map[string]bool{}
	results := 0
	r := benchfmt.NewReader(buf, "run.benchfmt")
	for r.Scan() {
		switch rec := r.Result(); rec := rec.(type) {
		case *benchfmt.SyntaxError:
			t.Errorf("syntax error: %v", rec)
		case *benchfmt.Result:
			results++
			base, parts := rec.Name.Parts()
			keys := map[string]string{}
			for _, p := range parts {
				k, v, _ := strings.Cut(strings.TrimPrefix(string(p), "/"), "=")
				keys[k] = v
			}
			if keys["transport"] == "" {
				t.Errorf("%s: no /transport key", rec.Name.Full())
			}
			gotTransports[keys["transport"]] = true
			if keys["-2"] != "" || len(parts) == 0 || string(parts[len(parts)-1]) != "-2" {
				t.Errorf("%s: no GOMAXPROCS suffix -2", rec.Name.Full())
			}
			if !strings.HasPrefix(string(base), "PingPong") && !strings.HasPrefix(string(base), "Stream") &&
				!strings.HasPrefix(string(base), "FanIn") && !strings.HasPrefix(string(base), "Rate") &&
				!strings.HasPrefix(string(base), "Connect") {
				t.Errorf("%s: unexpected base name %q", rec.Name.Full(), base)
			}
			if got := string(rec.GetConfig("network")); got != "private-netns" {
				t.Errorf("network config %q, want private-netns", got)
			}
			for _, v := range rec.Values {
				units[v.OrigUnit] = true
				if v.OrigUnit == "" {
					units[v.Unit] = true
				}
			}
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if results != ok {
		t.Errorf("%d benchmark results, want one per OK repeat (%d)", results, ok)
	}
	for tr := range wantTransports {
		if !gotTransports[tr] {
			t.Errorf("transport %q missing from benchfmt output", tr)
		}
	}
	for _, u := range []string{"ns/op", "MB/s", "round-trip-p50-ns", "round-trip-p99.9-ns", "round-trip-max-ns", "cpu-ns/op"} {
		if !units[u] {
			t.Errorf("unit %q missing (have %v)", u, units)
		}
	}
}

func TestCSVShape(t *testing.T) {
	run := readTestRun(t, "run.jsonl")
	recs, err := csv.NewReader(bytes.NewReader(renderTestRun(t, "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(recs)-1, countCases(run); got != want {
		t.Fatalf("%d data rows, want one per case (%d)", got, want)
	}
	for i, rec := range recs {
		if len(rec) != len(csvColumns) {
			t.Errorf("row %d has %d cells, want %d", i, len(rec), len(csvColumns))
		}
	}
}

func TestJSONDecodes(t *testing.T) {
	run := readTestRun(t, "run.jsonl")
	var doc jsonDoc
	if err := json.Unmarshal(renderTestRun(t, "json"), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Runs) != 1 || len(doc.Runs[0].Summaries) != countCases(run) {
		t.Fatalf("decoded %d runs", len(doc.Runs))
	}
	rows := 0
	for _, rk := range doc.Runs[0].Rankings {
		rows += len(rk.Rows)
	}
	if rows != countCases(run) {
		t.Errorf("rankings hold %d rows, want one per case (%d)", rows, countCases(run))
	}
}

// countCases returns the number of distinct cases in run.
func countCases(run *bench.Records) int {
	seen := map[bench.Case]bool{}
	for i := range run.Results {
		seen[run.Results[i].Case()] = true
	}
	return len(seen)
}

// TestLatencyLabelled checks that every latency column of the human
// formats says round trip.
func TestLatencyLabelled(t *testing.T) {
	for _, line := range strings.Split(string(renderTestRun(t, "markdown")), "\n") {
		if !strings.HasPrefix(line, "| # |") {
			continue
		}
		for _, col := range []string{"p50", "p90", "p99", "p99.9", "max", "mean"} {
			if strings.Contains(line, "| "+col+" |") {
				t.Errorf("markdown column %q is not labelled round trip: %s", col, line)
			}
		}
		if strings.Contains(line, "p50") && !strings.Contains(line, "round trip p50") {
			t.Errorf("no round trip label: %s", line)
		}
	}
	header := strings.SplitN(string(renderTestRun(t, "csv")), "\n", 2)[0]
	for _, col := range strings.Split(header, ",") {
		if strings.HasSuffix(col, "_ns") && !strings.Contains(col, "round_trip_") && !strings.Contains(col, "cpu") {
			t.Errorf("csv latency column %q is not labelled round trip", col)
		}
	}
}

// TestUnusedOptionsLeftOut: a run's rate and fanin_conns appear in the
// table's options line and the benchfmt configuration only when it ran
// the workload that uses them (older headers recorded both always).
func TestUnusedOptionsLeftOut(t *testing.T) {
	for _, c := range []struct {
		workloads string
		rate, fan bool
	}{
		{"pingpong,stream", false, false},
		{"pingpong,rate", true, false},
		{"fanin", false, true},
		{"rate,fanin", true, true},
	} {
		run := &bench.Records{Source: "x.jsonl", Header: readTestRun(t, "run.jsonl").Header}
		run.Header.Options = map[string]string{"workloads": c.workloads, "rate": "10000", "fanin_conns": "4", "duration": "1s"}
		for _, format := range []string{"table", "benchfmt"} {
			var buf bytes.Buffer
			if err := Render(&buf, format, run); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			out := buf.String()
			rate, fan := "rate=10000", "fanin_conns=4"
			if format == "benchfmt" {
				rate, fan = "rate: 10000", "fanin-conns: 4"
			}
			if got := strings.Contains(out, rate); got != c.rate {
				t.Errorf("workloads %s, %s: rate shown %v, want %v", c.workloads, format, got, c.rate)
			}
			if got := strings.Contains(out, fan); got != c.fan {
				t.Errorf("workloads %s, %s: fanin_conns shown %v, want %v", c.workloads, format, got, c.fan)
			}
			if !strings.Contains(out, "duration") {
				t.Errorf("workloads %s, %s: the other options are gone:\n%s", c.workloads, format, out)
			}
		}
	}
}

// TestBenchmarkNamesEveryWorkload: every workload ipcbench runs has a
// benchmark name, and the benchfmt doc lists it (http was "Http", by the
// fallback for workloads of foreign records).
func TestBenchmarkNamesEveryWorkload(t *testing.T) {
	src, err := os.ReadFile("benchfmt.go")
	if err != nil {
		t.Fatal(err)
	}
	_, doc, ok := strings.Cut(string(src), "// with the workload spelt ")
	doc, _, _ = strings.Cut(doc, " and the\n")
	if !ok || doc == "" {
		t.Fatal("benchfmt.go's doc no longer says how workloads are spelt")
	}
	for _, w := range bench.Workloads() {
		name, ok := workloadNames[w]
		if !ok {
			t.Errorf("workload %s has no benchmark name", w)
			continue
		}
		if !slices.Contains(strings.FieldsFunc(doc, func(r rune) bool { return r == ',' || r == ' ' }), name) {
			t.Errorf("workload %s: %s is not among the spellings the doc lists (%q)", w, name, doc)
		}
	}
}
