package floor

import (
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/bench"
)

// testFile writes a header and the records of three pairs through a
// Writer, as a floor run does.
func testFile(t *testing.T) (*Writer, []byte) {
	t.Helper()
	hdr := bench.Header{
		Time:    time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Tool:    "ipcbench test",
		Machine: map[string]string{"hostname": "box", "cores": "2", "cpu_model": "Some CPU", "kernel": "6.1", "go_version": "go1.26"},
		Network: "host",
		Options: map[string]string{"repeats": "3", "pingpong_n": "1000", "stream_bytes": "1GiB", "fanin_n": "2000", "c_compiler": "cc 12"},
		Command: []string{"ipcbench", "floor", "-repeats", "3"},
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, hdr)
	if err != nil {
		t.Fatal(err)
	}
	pp := Pair{Workload: "pingpong", Variant: "unix", Size: 64, Conns: 1, Placement: "same-core", C: CProgram{Program: "pingpong", Mode: "unix"}, Target: "≤ 1.2×"}
	st := Pair{Workload: "stream", Variant: "pipe", Size: 64 << 10, Conns: 1, Placement: "unpinned", C: CProgram{Program: "stream", Mode: "pipe", Args: []string{"-v"}}, Target: "≥ 0.9×"}
	fi := Pair{Workload: "fanin", Variant: "shm-ring", Size: 1024, Conns: 16, Placement: "unpinned", C: CProgram{Program: "fanin", Mode: "unix"}, Target: "—"}
	for _, m := range []struct {
		p    Pair
		c, g []float64
	}{
		{pp, []float64{10000, 9000, 11000}, []float64{12000, 13000, 11000}}, // 12 µs / 10 µs = 1.20×: meets
		{st, []float64{2000, 2100, 1900}, []float64{1500, 1700, 1600}},      // 1600 / 2000 = 0.80×: misses
		{fi, []float64{50000, 70000}, []float64{20000, 40000}},              // medians of two: 30k / 60k
	} {
		for rep := range m.c {
			if err := w.Write(m.p.record(SideC, rep, m.c[rep], "RESULT ...")); err != nil {
				t.Fatal(err)
			}
			if err := w.Write(m.p.record(SideIPCBench, rep, m.g[rep], "")); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w, buf.Bytes()
}

func TestTableFromRecords(t *testing.T) {
	w, raw := testFile(t)
	f, err := Read(bytes.NewReader(raw), "floor.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Header, w.File.Header) || !reflect.DeepEqual(f.Records, w.File.Records) {
		t.Fatalf("read back differs from what was written:\n%+v\n%+v", f, w.File)
	}
	// gzip-compressed, as every raw-record reader takes it.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	if fz, err := Read(bytes.NewReader(gz.Bytes()), "floor.jsonl.gz"); err != nil {
		t.Errorf("gzip-compressed: %v", err)
	} else if !reflect.DeepEqual(fz, f) {
		t.Errorf("gzip-compressed: read back differs from the plain file")
	}
	for _, cut := range []int{12, gz.Len() / 2} {
		_, err := Read(bytes.NewReader(gz.Bytes()[:gz.Len()-cut]), "cut.gz")
		if !errors.Is(err, ErrMalformed) || !strings.HasPrefix(err.Error(), "cut.gz:") || !strings.Contains(err.Error(), "cut short or corrupt") {
			t.Errorf("gzip stream cut %d bytes short: %v, want a malformed-records error naming the file and saying so", cut, err)
		}
	}
	if f.Header.Type != bench.KindHeader || f.Header.Version != bench.RecordVersion || len(f.Records) != 16 {
		t.Fatalf("header %+v, %d records", f.Header, len(f.Records))
	}
	var fromFile, fromWriter bytes.Buffer
	if err := Table(&fromFile, f); err != nil {
		t.Fatal(err)
	}
	if err := Table(&fromWriter, &w.File); err != nil {
		t.Fatal(err)
	}
	if fromFile.String() != fromWriter.String() {
		t.Fatalf("the table of the file differs from the table of the run")
	}
	table := fromFile.String()
	for _, want := range []string{
		"| pingpong | 64B | 1 | unix | same-core | unix | 12.0 µs | 10.0 µs | 1.20× | ≤ 1.2× | meets |",
		"| stream | 64KiB | 1 | pipe | unpinned | pipe -v | 1600 MB/s | 2000 MB/s | 0.80× | ≥ 0.9× | misses |",
		"| fanin | 1KiB | 16 | shm-ring | unpinned | unix | 30.0k msg/s | 60.0k msg/s | 0.50× | — |  |",
		"Medians of 3 interleaved runs",
		"Machine: box, 2 CPUs (Some CPU), kernel 6.1, go1.26; C compiler: cc 12. Started 2026-11-30 12:00 UTC; ipcbench test.",
		"Measured by `ipcbench floor -repeats 3`",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	f.Header.Options["repeats"] = "1"
	var one bytes.Buffer
	if err := Table(&one, f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(one.String(), "One run per side.") || strings.Contains(one.String(), "Medians of 1 ") {
		t.Errorf("a run of one repeat:\n%s", one.String())
	}
}

func TestRowsSkipOneSidedPairs(t *testing.T) {
	p := Pair{Workload: "pingpong", Variant: "pipe", Size: 64, Conns: 1, Placement: "unpinned", C: CProgram{Program: "pingpong", Mode: "pipe"}, Target: "≤ 1.5×"}
	f := &File{Records: []Record{p.record(SideC, 0, 1000, "")}}
	if rows := Rows(f); len(rows) != 0 {
		t.Fatalf("a pair with only its C side gave rows %+v", rows)
	}
}

func TestVerdict(t *testing.T) {
	for _, c := range []struct {
		ratio  float64
		target string
		want   string
	}{
		{1.2, "≤ 1.2×", "meets"}, {1.21, "≤ 1.2×", "misses"}, {0.9, "≥ 0.9×", "meets"}, {0.89, "≥ 0.9×", "misses"},
		{5, "—", ""}, {1, "", ""}, {1, "≤ x×", ""},
	} {
		if got := verdict(c.ratio, c.target); got != c.want {
			t.Errorf("verdict(%v, %q) = %q, want %q", c.ratio, c.target, got, c.want)
		}
	}
}

func TestReadRefusesWhatIsNotAFloorFile(t *testing.T) {
	_, raw := testFile(t)
	lines := strings.SplitAfter(string(raw), "\n")
	header, rec := lines[0], lines[1]
	for name, in := range map[string]string{
		"empty":            "",
		"no header":        rec,
		"second header":    header + header + rec,
		"newer version":    strings.Replace(header, `"version":1`, `"version":99`, 1) + rec,
		"a run's result":   header + `{"type":"result","workload":"pingpong"}` + "\n",
		"unknown type":     header + `{"type":"mystery"}` + "\n",
		"bad JSON":         header + "{\n",
		"bad side":         header + strings.Replace(rec, `"side":"c"`, `"side":"go"`, 1),
		"zero value":       header + strings.Replace(rec, `"value":10000`, `"value":0`, 1),
		"unknown unit":     header + strings.Replace(rec, `"unit":"ns"`, `"unit":"furlongs"`, 1),
		"zstd":             "\x28\xb5\x2f\xfd" + header,
		"old record shape": `{"side":"c","workload":"pingpong","variant":"pipe","placement":"same-core","repeat":0,"value":12924.5}` + "\n",
	} {
		if _, err := Read(strings.NewReader(in), "x.jsonl"); !errors.Is(err, ErrMalformed) || !strings.HasPrefix(err.Error(), "x.jsonl:") {
			t.Errorf("%s: %v, want ErrMalformed, naming the file first", name, err)
		}
	}
}
