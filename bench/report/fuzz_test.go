package report

import (
	"bytes"
	"os"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
)

// FuzzRead feeds arbitrary bytes to the raw-record reader (bench.ReadRecords), and what it
// accepts to every renderer: neither may panic, and an accepted run must
// summarize and render without error (in every format). Raw files travel between machines
// and people, so the reader is an input boundary.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"testdata/run.jsonl", "testdata/run2.jsonl"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		// A header and a few results: small seeds keep the fuzzer fast.
		lines := bytes.SplitAfter(b, []byte("\n"))
		f.Add(bytes.Join(lines[:min(4, len(lines))], nil))
		f.Add(bytes.Join(lines[:min(3, len(lines))], nil)[:len(lines[0])+40])
	}
	// A histogram that does not decode.
	b, err := os.ReadFile("testdata/run.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	f.Add(append(append([]byte(nil), lines[0]...), bytes.Replace(lines[1], []byte(`"hist":"`), []byte(`"hist":"garbage`), 1)...))
	f.Add([]byte(`{"type":"header","version":99}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		run, err := bench.ReadRecords(bytes.NewReader(data), "fuzz.jsonl")
		if err != nil {
			if run != nil {
				t.Fatalf("Read returned a run and an error: %v", err)
			}
			return
		}
		for _, format := range Formats() {
			var out bytes.Buffer
			if err := Render(&out, format, run); err != nil {
				t.Fatalf("rendering an accepted run as %s: %v", format, err)
			}
		}
	})
}
