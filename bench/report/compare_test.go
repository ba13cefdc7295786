package report

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
)

func TestCompareGolden(t *testing.T) {
	r1, r2 := readTestRun(t, "run.jsonl"), readTestRun(t, "run2.jsonl")
	var buf bytes.Buffer
	if err := Compare(&buf, r1, r2); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare.golden", buf.Bytes())
	out := buf.String()
	for _, want := range []string{
		"only in old:\n  stream 64KiB pipe",
		"only in new:\n  pingpong 64B unixpacket",
		"p50 round trip (median of repeats, lower is better)",
		"~  (p=",
		"warning: option repeats differs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("compare output lacks %q", want)
		}
	}
}

// TestCompareSignificance checks "~" against a real change.
func TestCompareSignificance(t *testing.T) {
	old := &bench.Records{Source: "old", Results: repeatsOf(t, "unix", spread(10000, 6)...)}
	same := &bench.Records{Source: "same", Results: repeatsOf(t, "unix", 10010, 9990, 10030, 9970, 10050, 9950)}
	faster := &bench.Records{Source: "faster", Results: repeatsOf(t, "unix", spread(8000, 6)...)}
	tests := []struct {
		name string
		new  *bench.Records
		want string
	}{
		{"no change", same, "~  (p="},
		{"20% faster", faster, "-20.01%  (p=0.002 n=6)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Compare(&buf, old, tt.new); err != nil {
				t.Fatal(err)
			}
			p50 := strings.SplitN(buf.String(), "p99 round trip", 2)[0]
			if !strings.Contains(p50, tt.want) {
				t.Errorf("p50 section lacks %q:\n%s", tt.want, p50)
			}
		})
	}
}

func TestCompareNil(t *testing.T) {
	if err := Compare(&bytes.Buffer{}, nil, &bench.Records{}); !errors.Is(err, ErrNoRuns) {
		t.Errorf("Compare(nil, run) = %v", err)
	}
}

// TestCompareNothingInCommon: two runs of different cases, or whose
// common cases all failed on one side, are an error (ErrNothingCompared)
// after the lists that say why.
func TestCompareNothingInCommon(t *testing.T) {
	unix := &bench.Records{Source: "unix", Results: repeatsOf(t, "unix", spread(10000, 3)...)}
	pipe := &bench.Records{Source: "pipe", Results: repeatsOf(t, "pipe", spread(9000, 3)...)}
	failed := &bench.Records{Source: "failed", Results: repeatsOf(t, "unix", spread(10000, 3)...)}
	for i := range failed.Results {
		failed.Results[i].Status, failed.Results[i].Reason = bench.StatusFailed, "peer died"
	}
	for _, c := range []struct {
		name     string
		old, new *bench.Records
		want     string
	}{
		{"different transports", unix, pipe, "only in old:\n  pingpong 64B unix\n\nonly in new:\n  pingpong 64B pipe\n"},
		{"failed on one side", unix, failed, "not compared (no OK repeat on one side):\n  pingpong 64B unix (new: failed: peer died)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Compare(&buf, c.old, c.new)
			if !errors.Is(err, ErrNothingCompared) {
				t.Errorf("err = %v, want ErrNothingCompared", err)
			}
			if out := buf.String(); !strings.HasSuffix(out, c.want) {
				t.Errorf("output does not end with %q:\n%s", c.want, out)
			}
		})
	}
	if err := Compare(&bytes.Buffer{}, unix, unix); err != nil {
		t.Errorf("a run against itself: %v", err)
	}
}

// TestEnvDiffsUnusedOptions: rate and fanin_conns differ in a way worth a
// warning only when one of the runs ran the workload that uses them (an
// older run recorded both whatever its workloads).
func TestEnvDiffsUnusedOptions(t *testing.T) {
	h := func(workloads, key, value string) *bench.Header {
		o := map[string]string{"workloads": workloads}
		if value != "" {
			o[key] = value
		}
		return &bench.Header{Options: o}
	}
	for _, c := range []struct {
		key  string
		a, b *bench.Header
		warn bool
	}{
		{"fanin_conns", h("pingpong", "fanin_conns", ""), h("pingpong,fanin", "fanin_conns", "4"), true},
		{"rate", h("pingpong,stream,fanin", "rate", "10000"), h("pingpong,stream,fanin", "rate", ""), false},
		{"rate", h("pingpong", "rate", "10000"), h("pingpong", "rate", "5000"), false},
		{"rate", h("pingpong,rate", "rate", "10000"), h("pingpong", "rate", ""), true},
		{"rate", h("rate", "rate", "10000"), h("rate", "rate", "5000"), true},
		{"fanin_conns", h("pingpong,rate", "fanin_conns", "4"), h("pingpong", "fanin_conns", "16"), false},
		{"fanin_conns", h("pingpong,fanin", "fanin_conns", "4"), h("pingpong", "fanin_conns", ""), true},
		{"fanin_conns", h("fanin", "fanin_conns", "4"), h("fanin", "fanin_conns", "16"), true},
	} {
		got := false
		for _, d := range envDiffs(c.a, c.b) {
			got = got || strings.HasPrefix(d, "option "+c.key+" ") || strings.HasPrefix(d, "option "+c.key+":")
		}
		if got != c.warn {
			t.Errorf("%v vs %v: %s warned %v, want %v", c.a.Options, c.b.Options, c.key, got, c.warn)
		}
	}
}

// TestOptionDiffWording: an option one run did not record is said to be
// the other's alone, not to differ from a value "" nobody gave.
func TestOptionDiffWording(t *testing.T) {
	withFanin := &bench.Header{Options: map[string]string{"workloads": "pingpong,fanin", "fanin_conns": "4", "repeats": "6"}}
	without := &bench.Header{Options: map[string]string{"workloads": "pingpong", "repeats": "5"}}
	for _, c := range []struct {
		a, b *bench.Header
		want []string
	}{
		{without, withFanin, []string{
			`option fanin_conns: only the second run has it ("4")`,
			`option repeats differs: "5" vs "6"`,
			`option workloads differs: "pingpong" vs "pingpong,fanin"`,
		}},
		{withFanin, without, []string{
			`option fanin_conns: only the first run has it ("4")`,
			`option repeats differs: "6" vs "5"`,
			`option workloads differs: "pingpong,fanin" vs "pingpong"`,
		}},
	} {
		if got := envDiffs(c.a, c.b); !slices.Equal(got, c.want) {
			t.Errorf("envDiffs(%v, %v) =\n%q\nwant\n%q", c.a.Options, c.b.Options, got, c.want)
		}
	}
}

// TestCompareNoteNamesRows: a note of the statistics names the rows it is
// about, not the whole block: "all samples are equal" of unix alone, under
// a block that also holds pipe, whose samples differ.
func TestCompareNoteNamesRows(t *testing.T) {
	rs := func(pipe []int64) []bench.Result {
		return append(repeatsOf(t, "pipe", pipe...), repeatsOf(t, "unix", 5000, 5000, 5000, 5000, 5000, 5000)...)
	}
	old := &bench.Records{Source: "old", Results: rs(spread(10000, 6))}
	new := &bench.Records{Source: "new", Results: rs(spread(8000, 6))}
	var b bytes.Buffer
	if err := Compare(&b, old, new); err != nil {
		t.Fatal(err)
	}
	var p50 string // the p50 block
	for _, block := range strings.Split(b.String(), "\n\n") {
		if strings.HasPrefix(block, "p50 round trip") {
			p50 = block
		}
	}
	if !strings.Contains(p50+"\n", "note: all samples are equal: pingpong 64B unix\n") {
		t.Errorf("the p50 block's note does not name unix's row alone:\n%s", b.String())
	}
}
