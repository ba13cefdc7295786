package bench

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/internal/hist"
)

const headerLine = `{"type":"header","version":1,"time":"2026-01-02T03:04:05Z","tool":"t","machine":{"gomaxprocs":"2"},"network":"private-netns","options":{}}`

// resultLine returns a valid OK pingpong result line with the given
// histogram text.
func resultLine(tb testing.TB, histText string) string {
	tb.Helper()
	return `{"type":"result","workload":"pingpong","transport":"unix","size":64,"conns":1,"placement":"unpinned","repeat":0,"status":"ok",` +
		`"duration_ns":1000000,"messages":100,"bytes":6400,"errors":0,"latency_kind":"round-trip","hist":"` + histText + `",` +
		`"bench_user_ns":1,"bench_sys_ns":1,"peer_user_ns":1,"peer_sys_ns":1}`
}

func goodHist(tb testing.TB) string {
	tb.Helper()
	h := hist.New()
	for i := int64(1); i <= 100; i++ {
		h.Record(1000 * i)
	}
	s, err := h.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestReadRecords(t *testing.T) {
	res := resultLine(t, goodHist(t))
	tests := []struct {
		name    string
		input   string
		results int
	}{
		{"header only", headerLine + "\n", 0},
		{"one result", headerLine + "\n" + res + "\n", 1},
		{"blank lines ignored", "\n" + headerLine + "\n\n" + res + "\n\n", 1},
		{"complete last line without newline", headerLine + "\n" + res, 1},
		{"CRLF line ends", headerLine + "\r\n" + res + "\r\n", 1},
		{"unknown fields ignored", strings.Replace(headerLine, `"tool"`, `"future":1,"tool"`, 1) + "\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := ReadRecords(strings.NewReader(tt.input), "in.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			if len(run.Results) != tt.results {
				t.Errorf("%d results, want %d", len(run.Results), tt.results)
			}
			if run.Source != "in.jsonl" || run.Header.Network != "private-netns" {
				t.Errorf("source %q, header %+v", run.Source, run.Header)
			}
		})
	}
}

// gzipped returns s compressed with gzip.
func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// cut returns s cut to the fraction f of its length, or, for a negative
// f, without its last -f bytes.
func cut(s string, f float64) string {
	if f < 0 {
		return s[:len(s)+int(f)]
	}
	return s[:int(float64(len(s))*f)]
}

// badChecksum returns a gzip stream s with its CRC-32 trailer changed.
func badChecksum(s string) string {
	b := []byte(s)
	b[len(b)-8] ^= 0xff
	return string(b)
}

// TestReadRecordsGzip reads gzip-compressed records as the plain ones,
// and a different repeat of the same case as a repeat.
func TestReadRecordsGzip(t *testing.T) {
	res := resultLine(t, goodHist(t))
	plain := headerLine + "\n" + res + "\n" + strings.Replace(res, `"repeat":0`, `"repeat":1`, 1) + "\n"
	want, err := ReadRecords(strings.NewReader(plain), "in.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Results) != 2 {
		t.Fatalf("%d results, want 2 (repeats 0 and 1)", len(want.Results))
	}
	got, err := ReadRecords(strings.NewReader(gzipped(t, plain)), "in.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Results, want.Results) || got.Header.Network != want.Header.Network {
		t.Errorf("gzip-compressed records read as %+v, want %+v", got, want)
	}
}

func TestReadRecordsMalformed(t *testing.T) {
	res := resultLine(t, goodHist(t))
	// sample_every is an int: where 2^62 does not fit one (32-bit), the
	// JSON decoder refuses it and names the field itself.
	hugeSampleEvery := "sample_every 4611686018427387904"
	if strconv.IntSize == 32 {
		hugeSampleEvery = "cannot unmarshal number 4611686018427387904 into Go struct field Result.sample_every"
	}
	tests := []struct {
		name  string
		input string
		where string // "file:line" the error must start with
		what  string // text the message must contain
	}{
		{"empty file", "", "bad.jsonl:1:", "missing header"},
		{"blank file", "\n\n", "bad.jsonl:2:", "missing header"},
		{"missing header", res + "\n", "bad.jsonl:1:", "missing header"},
		{"not JSON", headerLine + "\nhello world\n", "bad.jsonl:2:", "bad JSON"},
		{"JSON but not an object", headerLine + "\n[1,2]\n", "bad.jsonl:2:", "bad JSON"},
		{"two objects on a line", headerLine + "\n" + res + res + "\n", "bad.jsonl:2:", "bad JSON"},
		{"truncated line", headerLine + "\n" + res[:len(res)/2], "bad.jsonl:2:", "truncated line"},
		{"unknown record type", headerLine + "\n" + `{"type":"interval"}` + "\n", "bad.jsonl:2:", `unknown record type "interval"`},
		{"no type", headerLine + "\n" + `{"workload":"pingpong"}` + "\n", "bad.jsonl:2:", `no "type"`},
		{"second header", headerLine + "\n" + res + "\n" + headerLine + "\n", "bad.jsonl:3:", "second header"},
		{"newer version", strings.Replace(headerLine, `"version":1`, `"version":2`, 1) + "\n", "bad.jsonl:1:", "newer"},
		{"no version", strings.Replace(headerLine, `"version":1,`, ``, 1) + "\n", "bad.jsonl:1:", "no valid version"},
		{"bad histogram", headerLine + "\n" + resultLine(t, "bm90IGEgaGlzdG9ncmFt") + "\n", "bad.jsonl:2:", "bad histogram"},
		{"histogram not base64", headerLine + "\n" + resultLine(t, "%%%") + "\n", "bad.jsonl:2:", "bad histogram"},
		{"unlabelled histogram", headerLine + "\n" + strings.Replace(res, `"latency_kind":"round-trip",`, ``, 1) + "\n", "bad.jsonl:2:", "not labelled round-trip"},
		{"one-way latency", headerLine + "\n" + strings.Replace(res, `"round-trip"`, `"one-way"`, 1) + "\n", "bad.jsonl:2:", "unknown latency kind"},
		{"unknown status", headerLine + "\n" + strings.Replace(res, `"ok"`, `"great"`, 1) + "\n", "bad.jsonl:2:", "unknown status"},
		{"no workload", headerLine + "\n" + strings.Replace(res, `"pingpong"`, `""`, 1) + "\n", "bad.jsonl:2:", "no workload"},
		{"no transport", headerLine + "\n" + strings.Replace(res, `"unix"`, `""`, 1) + "\n", "bad.jsonl:2:", "no transport"},
		{"negative count", headerLine + "\n" + strings.Replace(res, `"messages":100`, `"messages":-1`, 1) + "\n", "bad.jsonl:2:", "negative"},
		{"huge sample_every", headerLine + "\n" + strings.Replace(res, `"messages":100`, `"messages":100,"sample_every":4611686018427387904`, 1) + "\n", "bad.jsonl:2:", hugeSampleEvery},
		{"negative sample_every", headerLine + "\n" + strings.Replace(res, `"messages":100`, `"messages":100,"sample_every":-16`, 1) + "\n", "bad.jsonl:2:", "sample_every -16"},
		{"ok without interval", headerLine + "\n" + strings.Replace(res, `"duration_ns":1000000`, `"duration_ns":0`, 1) + "\n", "bad.jsonl:2:", "no measured interval"},
		{"wrong field type", headerLine + "\n" + strings.Replace(res, `"size":64`, `"size":"64"`, 1) + "\n", "bad.jsonl:2:", "bad result"},
		{"a repeat twice", headerLine + "\n" + res + "\n" + res + "\n", "bad.jsonl:3:", "repeat 0 of pingpong unix"},
		{"a floor record", headerLine + "\n" + `{"type":"floor","name":"pingpong/unix/64B/1/same-core"}` + "\n", "bad.jsonl:2:", "floor -report"},
		{"zstd", "\x28\xb5\x2f\xfd rest", "bad.jsonl:1:", "zstd-compressed"},
		{"xz", "\xfd7zXZ\x00 rest", "bad.jsonl:1:", "xz-compressed"},
		{"bzip2", "BZh91AY&SY", "bad.jsonl:1:", "bzip2-compressed"},
		{"broken gzip", "\x1f\x8b\x00\x00", "bad.jsonl:1:", "gzip header"},
		{"gzip of garbage", gzipped(t, "hello world\n"), "bad.jsonl:1:", "bad JSON"},
		{"gzip cut short", cut(gzipped(t, headerLine+"\n"+strings.Repeat(res+"\n", 3)), 0.5), "bad.jsonl:", "cut short or corrupt"},
		{"gzip without its trailer", cut(gzipped(t, headerLine+"\n"+res+"\n"), -8), "bad.jsonl:", "cut short or corrupt"},
		{"gzip with a bad checksum", badChecksum(gzipped(t, headerLine+"\n"+res+"\n")), "bad.jsonl:", "cut short or corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadRecords(strings.NewReader(tt.input), "bad.jsonl")
			if err == nil {
				t.Fatal("ReadRecords succeeded")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *ParseError", err)
			}
			if !strings.HasPrefix(err.Error(), tt.where) {
				t.Errorf("error %q does not start with %q", err, tt.where)
			}
			if !strings.Contains(err.Error(), tt.what) {
				t.Errorf("error %q does not say %q", err, tt.what)
			}
		})
	}
}

func TestReadRecordsBadHistogramWrapsCause(t *testing.T) {
	_, err := ReadRecords(strings.NewReader(headerLine+"\n"+resultLine(t, "%%%")+"\n"), "x")
	if !errors.Is(err, hist.ErrCorrupt) {
		t.Errorf("error %v does not wrap hist.ErrCorrupt", err)
	}
}

func TestReadRecordsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.jsonl")
	if err := os.WriteFile(path, []byte(headerLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run, err := ReadRecordsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if run.Source != path {
		t.Errorf("source %q, want %q", run.Source, path)
	}
	_, err = ReadRecordsFile(filepath.Join(dir, "missing.jsonl"))
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrMalformed) {
		t.Errorf("missing file: %v, want os.ErrNotExist and not ErrMalformed", err)
	}
}
