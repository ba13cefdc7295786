package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/floor"
	"github.com/ipcbench/ipcbench/internal/testpeer"
	"github.com/ipcbench/ipcbench/internal/units"
	"github.com/ipcbench/ipcbench/transports"
)

// bogus ends a command line that must be refused for an earlier flag:
// -network bogus fails after every option check and before anything
// measures, so a check that is missing gives the network's error, not
// the one a case wants.
var bogus = []string{"-network", "bogus"}

// usageCase is a command line refused with exit 2 and a one-line error
// that holds want and none of the sentinel texts (bad options, bad
// question) that mean nothing to a user.
type usageCase struct {
	name string
	args []string
	want string
}

func checkUsage(t *testing.T, cases []usageCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", c.args...)
			if code != exitUsage {
				t.Fatalf("%q: exit %d, want %d; stderr:\n%s", c.args, code, exitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout not empty on error: %q", stdout)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n > 0 {
				t.Errorf("want a one-line error, got:\n%s", stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("%q: error %q does not say %q", c.args, stderr, c.want)
			}
			for _, internal := range []string{"bad options", "bad question", "remote peer unusable"} {
				if strings.Contains(stderr, internal) {
					t.Errorf("error %q shows the internal %q", stderr, internal)
				}
			}
			if w := repeatedPrefix(stderr); w != "" {
				t.Errorf("error %q repeats %q", stderr, w)
			}
		})
	}
}

// TestEmptyFlagValues: a flag given an empty value (an unset shell
// variable), or a list of commas alone, is a usage error naming the flag,
// for every command; never "the default", which for run is the whole suite.
func TestEmptyFlagValues(t *testing.T) {
	goodRaw := filepath.Join("..", "..", "bench", "report", "testdata", "run.jsonl")
	var cases []usageCase
	for _, fl := range []string{"t", "transports", "w", "workloads", "s", "sizes", "conns", "placement", "pin",
		"peer-model", "peer-source", "peer", "connect", "buffer", "framing", "format"} {
		cases = append(cases, usageCase{"run -" + fl + " empty", append([]string{"run", "-" + fl, ""}, bogus...), "-" + fl + ": empty value"})
	}
	for _, fl := range []string{"t", "w", "s", "conns", "placement", "peer-model", "peer-source"} {
		cases = append(cases, usageCase{"run -" + fl + " commas", append([]string{"run", "-" + fl, " , "}, bogus...), "-" + fl + ` " , ": no value in the list`})
	}
	cases = append(cases,
		usageCase{"run -placement tab", append([]string{"run", "-placement", ",\t,"}, bogus...), "no value in the list"},
		usageCase{"run -network empty", []string{"run", "-network", ""}, "-network: empty value"},
		usageCase{"run -out empty", append([]string{"run", "-out", ""}, bogus...), "-out: empty path"},
		usageCase{"choose -t empty", append([]string{"choose", "-s", "64", "-t", ""}, bogus...), "-t: empty value"},
		usageCase{"choose -t commas", append([]string{"choose", "-s", "64", "-t", ","}, bogus...), "no value in the list"},
		usageCase{"choose -placement empty", append([]string{"choose", "-s", "64", "-placement", ""}, bogus...), "-placement: empty value"},
		usageCase{"choose -w empty", append([]string{"choose", "-s", "64", "-w", ""}, bogus...), "-w: empty value"},
		usageCase{"choose -from empty", []string{"choose", "-s", "64", "-from", ""}, "-from: empty path"},
		usageCase{"floor -only empty", []string{"floor", "-only", ""}, "-only: empty value"},
		usageCase{"floor -stream-bytes empty", []string{"floor", "-stream-bytes", ""}, "-stream-bytes: empty value"},
		usageCase{"serve -t empty", []string{"serve", "-t", "", "-listen", filepath.Join(t.TempDir(), "s")}, "-t: empty value"},
		usageCase{"serve -summary empty", []string{"serve", "-t", "unix", "-summary", ""}, "-summary: empty path"},
		usageCase{"transports -network empty", []string{"transports", "-network", ""}, "-network: empty value"},
		usageCase{"report -format empty", []string{"report", "-format", "", goodRaw}, "-format: empty value"},
		usageCase{"plot -out empty", []string{"plot", "-out", "", goodRaw}, "-out: empty path"},
		usageCase{"report empty file name", []string{"report", ""}, "empty file name"},
	)
	checkUsage(t, cases)
}

// TestVariantGivenTwice: a default spelled out is the default variant, so
// naming both plans one case twice, which -help forbids.
func TestVariantGivenTwice(t *testing.T) {
	checkUsage(t, []usageCase{
		{"unix and unix[io=netpoll]", append([]string{"run", "-t", "unix,unix[io=netpoll]"}, bogus...), "-t: transport unix given twice, as unix and unix[io=netpoll]"},
		{"shm-ring and its default wait", append([]string{"run", "-transports", "shm-ring[wait=adaptive],shm-ring"}, bogus...), "given twice"},
		{"one size spelled twice", append([]string{"run", "-t", "unix[sndbuf=256k],unix[sndbuf=262144]"}, bogus...), "-t: transport unix[sndbuf=256KiB] given twice, as unix[sndbuf=256k] and unix[sndbuf=262144]"},
		{"default spin in another spelling", append([]string{"run", "-t", "shm-ring,shm-ring[spin_ns=020000]"}, bogus...), "-t: transport shm-ring given twice, as shm-ring and shm-ring[spin_ns=020000]"},
		{"choose unix and unix[io=netpoll]", append([]string{"choose", "-s", "64", "-t", "unix,unix[io=netpoll]"}, bogus...), "-t: transport unix given twice, as unix and unix[io=netpoll]"},
	})
}

// TestChooseLimits: -s and -conns out of range name the flag and the
// range.
func TestChooseLimits(t *testing.T) {
	checkUsage(t, []usageCase{
		{"-s too large", append([]string{"choose", "-s", "65MiB"}, bogus...), "-s: bad size \"65MiB\": larger than the maximum 64MiB"},
		{"-conns 0", append([]string{"choose", "-s", "64", "-conns", "0"}, bogus...), "-conns 0: want 1 to 1024"},
		{"-conns too many", append([]string{"choose", "-s", "64", "-conns", "1025"}, bogus...), "-conns 1025: want 1 to 1024"},
		// Refused before anything is measured (a budget it cannot meet).
		{"-budget too short", []string{"choose", "-s", "64", "-t", "unix", "-budget", "1ms"}, "ipcbench choose: -budget 1ms is less than the 600ms that 6 case runs (6 repeats of 1 transport) take at the least"},
	})
}

// TestChooseQuestionNamesFlags: a question choose cannot answer names
// the flag of the field at fault (a *choose.QuestionError's), with
// -from or without.
func TestChooseQuestionNamesFlags(t *testing.T) {
	ref := filepath.Join("..", "..", "bench", "choose", "testdata", "records.jsonl")
	c := func(more ...string) []string {
		return append(append([]string{"choose", "-s", "64"}, more...), bogus...)
	}
	from := func(more ...string) []string { return append([]string{"choose", "-s", "64", "-from", ref}, more...) }
	checkUsage(t, []usageCase{
		{"-placement", c("-placement", "bogus"), `ipcbench choose: -placement "bogus": want unpinned, same-core`},
		{"-placement on a CPU not ours", c("-placement", "0/1023"), "ipcbench choose: -placement 0/1023: CPU 1023 is not one this process may run on"},
		{"-w", c("-w", "bogus"), `ipcbench choose: -w "bogus": want pingpong, stream or http`},
		{"-conns with stream", c("-w", "stream", "-conns", "4"), "ipcbench choose: -conns: 4 connections: only pingpong"},
		{"-t measurement-only", c("-t", "shm-ring[zerocopy=off]"), "ipcbench choose: -t: shm-ring[zerocopy=off]: option zerocopy=off is measurement-only"},
		{"-from -placement", from("-placement", "bogus"), `ipcbench choose: -placement "bogus"`},
		{"-from -w", from("-w", "bogus"), `ipcbench choose: -w "bogus"`},
		{"-from -conns with stream", from("-w", "stream", "-conns", "3"), "ipcbench choose: -conns: 3 connections: only pingpong"},
		{"-from a file not there", []string{"choose", "-s", "64", "-from", filepath.Join(t.TempDir(), "none.jsonl")}, "ipcbench choose: -from: open "},
	})
}

// TestFloorFlagsNamed: floor's values that cannot run name their flag,
// without package floor's "bad floor options"; none of these measures.
func TestFloorFlagsNamed(t *testing.T) {
	checkUsage(t, []usageCase{
		{"-repeats 0", []string{"floor", "-repeats", "0"}, "ipcbench floor: -repeats 0: want at least 1\n"},
		{"-n too few", []string{"floor", "-n", "5"}, "ipcbench floor: -n: 5 round trips per pingpong: want at least 100"},
		{"-fanin-n too few", []string{"floor", "-fanin-n", "2"}, "ipcbench floor: -fanin-n: 2 fanin round trips: want at least one per connection"},
		{"-stream-bytes too few", []string{"floor", "-stream-bytes", "1k"}, "ipcbench floor: -stream-bytes: 1KiB per stream: want at least 4MiB (four of the largest message)"},
		{"-only no regexp", []string{"floor", "-only", "("}, "ipcbench floor: -only: error parsing regexp"},
		{"-only matches none", []string{"floor", "-only", "^zzz$"}, `ipcbench floor: -only: "^zzz$" matches no pair`},
		{"-report not there", []string{"floor", "-report", filepath.Join(t.TempDir(), "none.jsonl")}, "ipcbench floor: -report: open "},
	})
	for _, args := range [][]string{{"floor", "-n", "5"}, {"floor", "-only", "("}} {
		if _, _, stderr := runCLI(t, "", args...); strings.Contains(stderr, "bad floor options") {
			t.Errorf("%q: %q shows floor's sentinel", args, stderr)
		}
	}
}

// TestChooseFromChecksTransports: -t is checked with -from as a
// calibration checks it, and a default spelled out finds the default
// variant's records.
func TestChooseFromChecksTransports(t *testing.T) {
	ref := filepath.Join("..", "..", "bench", "choose", "testdata", "records.jsonl")
	from := func(trs string) []string {
		return []string{"choose", "-w", "pingpong", "-s", "64", "-from", ref, "-t", trs}
	}
	checkUsage(t, []usageCase{
		{"unknown transport", from("bogus"), "unknown transport"},
		{"bad option", from("unix[io=fast]"), "bad transport option"},
		{"twice", from("unix,unix"), "-t: transport unix given twice"},
		{"twice through all", from("all,unix"), "-t: transport unix given twice"},
		{"default spelled out after all", from("all,unix[io=netpoll]"), "-t: transport unix given twice, as unix and unix[io=netpoll]"},
		{"default spelled out twice", from("pipe,pipe[io=netpoll]"), "given twice"},
		{"measurement-only", from("shm-ring[zerocopy=off]"), "-t: shm-ring[zerocopy=off]: option zerocopy=off is measurement-only"},
		// Checked before stdin is read: a bad -t does not wait for it.
		{"from stdin", []string{"choose", "-s", "64", "-from", "-", "-t", "bogus"}, "unknown transport"},
	})
	code, out, stderr := runCLI(t, "", append(from("unix[io=netpoll]"), "-format", "json")...)
	if code != exitOK || !strings.Contains(out, `"winner": "unix"`) {
		t.Errorf("-t unix[io=netpoll]: exit %d, want unix's records to answer; stdout:\n%s\nstderr: %s", code, out, stderr)
	}
}

// TestRunOptionWording: errors name flags as typed, without internal
// wrappers, and say what a user can do.
func TestRunOptionWording(t *testing.T) {
	checkUsage(t, []usageCase{
		{"-t as typed", append([]string{"run", "-t", "carrier-pigeon"}, bogus...), "ipcbench run: -t: transport spec"},
		{"-transports as typed", append([]string{"run", "-transports", "carrier-pigeon"}, bogus...), "ipcbench run: -transports: transport spec"},
		{"-s as typed", append([]string{"run", "-s", "12parsecs"}, bogus...), "ipcbench run: -s: "},
		{"-w as typed", append([]string{"run", "-w", "sprint"}, bogus...), `ipcbench run: -w: unknown workload "sprint"`},
		{"-d as typed", append([]string{"run", "-d", "0"}, bogus...), "ipcbench run: -d 0s: must be positive"},
		{"placement without wrappers", append([]string{"run", "-placement", "moon"}, bogus...), `ipcbench run: -placement "moon": want`},
		{"pin without wrappers", append([]string{"run", "-pin", "moon"}, bogus...), `ipcbench run: -pin "moon": want`},
		{"duration without a unit", append([]string{"run", "-d", "5"}, bogus...), "a duration needs a unit, like 5s"},
		{"warm-up without a unit", append([]string{"run", "-warmup", "100"}, bogus...), "a duration needs a unit"},
		{"given twice without wrappers", append([]string{"run", "-t", "unix,pipe,unix"}, bogus...), "ipcbench run: -t: transport unix given twice"},
		{"choose given twice without wrappers", append([]string{"choose", "-s", "64", "-t", "unix,unix"}, bogus...), "ipcbench choose: -t: transport unix given twice"},
	})
}

// TestRunOptionsNameFlags: a value that bench.Options refuses (given
// twice, out of range, a CPU this process may not run on) is refused
// naming the flag as typed, once, without a package's prefix.
func TestRunOptionsNameFlags(t *testing.T) {
	r := func(more ...string) []string { return append(append([]string{"run"}, more...), bogus...) }
	checkUsage(t, []usageCase{
		{"-s given twice", r("-s", "64,64"), "ipcbench run: -s 64B given twice"},
		{"-sizes in two spellings", r("-sizes", "1k,1024"), "ipcbench run: -sizes 1KiB given twice"},
		{"-w given twice", r("-w", "pingpong,pingpong"), "ipcbench run: -w pingpong given twice"},
		{"-workloads given twice", r("-workloads", "fanin,stream,fanin"), "ipcbench run: -workloads fanin given twice"},
		{"-conns out of range", r("-w", "fanin", "-conns", "100000"), "ipcbench run: -conns 100000 out of range 1..1024"},
		{"-conns given twice", r("-conns", "4,4"), "ipcbench run: -conns 4 given twice"},
		{"-rate over the maximum", r("-w", "rate", "-rate", "20000000"), "ipcbench run: -rate 20000000: at most 10000000"},
		{"-placement given twice", r("-placement", "0/1,unpinned,0/1"), "ipcbench run: -placement 0/1 given twice"},
		{"-placement on a CPU not ours", r("-placement", "0/1023"), "ipcbench run: -placement 0/1023: CPU 1023 is not one this process may run on"},
		{"-pin on a CPU not ours", r("-pin", "1023/0"), "ipcbench run: -pin 1023/0: CPU 1023 is not one"},
		{"-placement on no CPU there is", r("-placement", "0/4096"), `ipcbench run: -placement "0/4096": peer CPUs: "4096": CPU 4096 above 1023`},
		{"-peer-model given twice", r("-peer-model", "thread,thread"), "ipcbench run: -peer-model thread given twice"},
		{"-peer-source given twice", r("-peer-source", "address,address"), "ipcbench run: -peer-source address given twice"},
		{"-framing unknown", r("-framing", "bogus"), `ipcbench run: -framing: unknown framing mode "bogus" (want length, fixed or delimited)`},
		{"-peer-model with -connect", []string{"run", "-t", "unix", "-connect", filepath.Join(t.TempDir(), "nobody"), "-peer-model", "thread"}, "ipcbench run: -peer-model thread: the server models are those of the peer the run starts"},
	})
	// Not one of them says a package's name ("frame:") or a sentinel's.
	for _, args := range [][]string{r("-framing", "bogus"), r("-s", "64,64"), r("-placement", "0/4096")} {
		if _, _, stderr := runCLI(t, "", args...); strings.Contains(stderr, "frame:") || strings.Contains(stderr, "bad config") || strings.Contains(stderr, "sysinfo") {
			t.Errorf("%q: %q names a package or its sentinel", args, stderr)
		}
	}
}

// TestServeFlagsNamed: serve's -framing and an address it cannot listen
// on name their flag, -framing without package frame's prefix.
func TestServeFlagsNamed(t *testing.T) {
	checkUsage(t, []usageCase{
		{"serve -listen unusable", []string{"serve", "-t", "tcp-localhost", "-listen", "/not/an/address:5000"}, `ipcbench serve: -listen /not/an/address:5000: cannot listen there: tcp-localhost: listen: "/not/an/address" is not a loopback address`},
		{"serve -listen without a port", []string{"serve", "-t", "tcp-localhost", "-listen", "/not/an/address"}, `ipcbench serve: -listen /not/an/address: no port; tcp-localhost listens on host:port`},
		{"serve -framing unknown", []string{"serve", "-t", "unix", "-listen", filepath.Join(t.TempDir(), "s"), "-framing", "bogus"}, `ipcbench serve: -framing: unknown framing mode "bogus"`},
	})
}

// TestUnusedFlags: a flag given that no selected workload uses is refused,
// naming the workload that does, instead of being taken and ignored (and
// -conns recorded in the raw header all the same); -n replaces -d, so the
// two together are refused, whatever -d's value. Left out, or given with
// the workload that uses it, each is taken.
func TestUnusedFlags(t *testing.T) {
	checkUsage(t, []usageCase{
		{"-rate without rate", append([]string{"run", "-rate", "5000", "-w", "pingpong"}, bogus...), "ipcbench run: -rate 5000: only the rate workload uses it, and it is not in -w pingpong; add it there, or leave -rate out"},
		{"-rate with the default workloads", append([]string{"run", "-rate", "5000"}, bogus...), "-rate 5000: only the rate workload uses it, and it is not among the default workloads (pingpong,stream,fanin); add it with -w, or leave -rate out"},
		{"-conns without fanin", append([]string{"run", "-conns", "16", "-w", "pingpong"}, bogus...), "ipcbench run: -conns 16: only the fanin workload uses it, and it is not in -w pingpong; add it there, or leave -conns out"},
		{"-conns without fanin, -workloads", append([]string{"run", "-conns", "16", "-workloads", "pingpong,rate"}, bogus...), "it is not in -workloads pingpong,rate"},
		{"-n with -d", append([]string{"run", "-n", "1000", "-d", "5s"}, bogus...), "ipcbench run: -d 5s and -n 1000: -n measures a count of messages instead of a duration; give one"},
		{"-n with -duration", append([]string{"run", "-duration", "5s", "-n", "1000"}, bogus...), "-duration 5s and -n 1000: -n measures"},
		{"-n with -d 0", append([]string{"run", "-n", "5", "-d", "0"}, bogus...), "-d 0s and -n 5: -n measures"},
		{"-n with -d -1s", append([]string{"run", "-n", "5", "-d", "-1s"}, bogus...), "-d -1s and -n 5: -n measures"},
		{"-n 0", append([]string{"run", "-n", "0"}, bogus...), "ipcbench run: -n 0: must be positive (leave -n out to measure for a duration)"},
		{"-n fewer than fanin's connections", append([]string{"run", "-w", "fanin", "-conns", "4,16", "-n", "10"}, bogus...), "ipcbench run: -n 10 is fewer messages than fanin's 16 connections: each needs at least one"},
		{"-framing with http alone", append([]string{"run", "-w", "http", "-framing", "fixed"}, bogus...), "ipcbench run: -framing fixed: no selected workload frames its messages with it (http frames its own); leave -framing out"},
		{"-framing fixed with the default workloads", append([]string{"run", "-framing", "fixed"}, bogus...), "ipcbench run: -framing fixed cannot mark the end of a stream, and stream is among the default workloads (pingpong,stream,fanin): name the others with -w, or use -framing length or delimited"},
		{"-framing fixed with stream", append([]string{"run", "-w", "stream", "-framing", "fixed"}, bogus...), "ipcbench run: -framing fixed cannot mark the end of a stream; use length or delimited with the stream workload"},
		{"-peer without -connect", append([]string{"run", "-peer", "serve"}, bogus...), "ipcbench run: -peer serve needs -connect ADDRESS: it says what listens there"},
		{"-format with -q", append([]string{"run", "-q", "-format", "csv"}, bogus...), "ipcbench run: -format csv with -q, which prints no summary to format: give one"},
		{"-format with -quiet", append([]string{"run", "-format", "json", "-quiet"}, bogus...), "-format json with -quiet, which prints no summary"},
	})
	for _, args := range [][]string{
		{"run", "-w", "rate", "-rate", "5000"},
		{"run", "-w", "pingpong,rate", "-rate", "5000", "-d", "1s"},
		{"run", "-w", "fanin", "-conns", "16"},
		{"run", "-conns", "1,16"}, // the default workloads have fanin
		{"run", "-n", "1000"},
		{"run", "-w", "fanin", "-conns", "4,16", "-n", "16"},
		{"run", "-w", "pingpong", "-d", "1s"},
		{"run", "-w", "http,pingpong", "-framing", "delimited"},
		{"run", "-q", "-out", "x.jsonl"},
		{"run", "-format", "csv"},
	} {
		code, _, stderr := runCLI(t, "", append(args, bogus...)...)
		if code != exitUsage || !strings.Contains(stderr, `-network "bogus"`) {
			t.Errorf("%q: exit %d, stderr %q; want only -network bogus refused", args, code, stderr)
		}
	}
	// -help says which workload each belongs to.
	_, help, _ := runCLI(t, "", "run", "-help")
	for _, want := range []string{"-rate without the rate workload, -conns without fanin, -framing with http alone (HTTP frames its own), -d with -n", "(only with rate in -w)", "(only with fanin in -w)", "not with -d"} {
		if !strings.Contains(strings.Join(strings.Fields(help), " "), want) {
			t.Errorf("run -help does not say %q", want)
		}
	}
}

// TestRunUpperBounds: -d, -warmup, -case-timeout, -repeats and -n have
// upper bounds that -help states, checked before anything runs: past
// them the runner's sums and products overflowed (a case timeout of
// -2562047h, "12 of -2 cases"). The bounds themselves are accepted.
func TestRunUpperBounds(t *testing.T) {
	// -repeats and floor's -n are ints: the largest is 2^31-1 on a 32-bit
	// platform, and the flag package refuses more itself.
	maxInt := strconv.Itoa(math.MaxInt)
	checkUsage(t, []usageCase{
		{"-d that overflows the timeout", append([]string{"run", "-d", "2562047h47m10s"}, bogus...), "ipcbench run: -d 2562047h47m10s: at most 24h"},
		{"-duration a century", append([]string{"run", "-duration", "1000000h"}, bogus...), "ipcbench run: -duration 1000000h0m0s: at most 24h"},
		{"-warmup over a day", append([]string{"run", "-warmup", "24h0m1s"}, bogus...), "ipcbench run: -warmup 24h0m1s: at most 24h"},
		{"-case-timeout over 72h", append([]string{"run", "-case-timeout", "73h"}, bogus...), "ipcbench run: -case-timeout 73h0m0s: at most 72h"},
		{"-repeats MaxInt", append([]string{"run", "-repeats", maxInt}, bogus...), "ipcbench run: -repeats " + maxInt + ": at most 10000"},
		{"-repeats 1e8", append([]string{"run", "-repeats", "100000000"}, bogus...), "ipcbench run: -repeats 100000000: at most 10000"},
		{"-n MaxInt64", append([]string{"run", "-n", "9223372036854775807"}, bogus...), "ipcbench run: -n 9223372036854775807: at most 1000000000"},
		{"floor -repeats", []string{"floor", "-repeats", "10001"}, "ipcbench floor: -repeats 10001: want at most 10000\n"},
		{"floor -n MaxInt", []string{"floor", "-n", maxInt}, "want at most 1000000000"},
		{"floor -fanin-n", []string{"floor", "-fanin-n", "1000000001"}, "want at most 1000000000"},
	})
	// The bounds themselves pass every check: only -network bogus is refused.
	for _, args := range [][]string{
		{"run", "-d", "24h", "-warmup", "24h", "-case-timeout", "72h", "-repeats", "10000"},
		{"run", "-n", "1000000000", "-warmup", "24h", "-case-timeout", "72h"},
	} {
		code, _, stderr := runCLI(t, "", append(args, bogus...)...)
		if code != exitUsage || !strings.Contains(stderr, `-network "bogus"`) {
			t.Errorf("%q: exit %d, stderr %q; want only -network bogus refused", args, code, stderr)
		}
	}
	// -help states them.
	_, help, _ := runCLI(t, "", "run", "-help")
	for _, want := range []string{"each case, at most 24h", "0 for none; at most 24h", "at most 72h (default", "cases; at most 10000", "at least one each); at most 1000000000"} {
		if !strings.Contains(help, want) {
			t.Errorf("run -help does not say %q", want)
		}
	}
}

// TestRunEchoWorkloads: against an echo server (-peer echo) a workload
// that cannot run there (stream, http) is refused before the server is
// reached, naming those that can; nothing listens at the address, so a
// check made later gives the probe's error instead. Left to the default
// workloads, those are left out, and the probe is what fails.
func TestRunEchoWorkloads(t *testing.T) {
	nobody := filepath.Join(t.TempDir(), "nobody")
	echo := func(more ...string) []string {
		return append([]string{"run", "-t", "unix", "-connect", nobody, "-peer", "echo"}, more...)
	}
	checkUsage(t, []usageCase{
		{"http", echo("-w", "http"), "ipcbench run: -peer echo: the http workload needs an HTTP server's responses, and an echo server sends the request back; against an echo server -w takes only pingpong, fanin, connect or rate"},
		{"http among others", echo("-workloads", "pingpong,http"), "the http workload needs an HTTP server's responses, and an echo server sends the request back; against an echo server -workloads takes only pingpong, fanin, connect or rate"},
		{"stream", echo("-w", "rate,stream"), "-peer echo: the stream workload needs the receiver's acknowledgement, which an echo server does not send; against an echo server -w takes only"},
		{"default workloads", echo(), "nothing listens there"},
		{"every echo workload", echo("-w", "pingpong,fanin,connect,rate"), "nothing listens there"},
		// The default workloads against an echo server have no stream for
		// -framing fixed to refuse, and no rate for -rate.
		{"fixed framing, default workloads", echo("-framing", "fixed", "-s", "64"), "nothing listens there"},
		{"-rate, default workloads", echo("-rate", "100"), "ipcbench run: -rate 100: only the rate workload uses it, and it is not among the default workloads (pingpong,fanin); add it with -w, or leave -rate out"},
	})
}

// TestRunConnectRefuses: with -connect, what would describe or change the
// server (a placement, -buffer, a transport option that only the listener
// applies: shm-*'s mapping, pipe's pipe_size) is refused, and so are a
// missing -t and a -network that is neither netns nor host, each before
// the server is reached (nothing listens at the address, so a check made
// later gives the probe's error instead). An option each side applies
// for itself (shm-ring's wait) passes.
func TestRunConnectRefuses(t *testing.T) {
	nobody := filepath.Join(t.TempDir(), "nobody")
	conn := func(more ...string) []string {
		return append([]string{"run", "-connect", nobody}, more...)
	}
	checkUsage(t, []usageCase{
		{"placement", conn("-t", "unix", "-placement", "same-core"), "ipcbench run: -placement same-core places the peer too, and a remote peer runs where it was started; leave the placement out and pin this process with taskset, the server where you start it"},
		{"pin", conn("-t", "unix", "-pin", "0/0"), "ipcbench run: -pin cpus=0/0 places the peer too"},
		{"buffer", conn("-t", "unix", "-buffer", "64k"), "ipcbench run: -buffer 64KiB: a remote peer listens with the buffers it was started with, so only this side's would change; leave it out"},
		{"shm-ring mapping=file", conn("-t", "shm-ring[mapping=file]"), "ipcbench run: -t: shm-ring: option mapping=file: the server decides it (it listens with the options it was started with, and a dialer's value is not used), so the records would name a variant this run does not measure; leave it out, and give it to the server when you start it"},
		{"shm-lock mapping=memfd", conn("-t", "shm-lock[mapping=memfd]"), "ipcbench run: -t: shm-lock: option mapping=memfd: the server decides it"},
		{"pipe pipe_size", conn("-transports", "pipe[pipe_size=64k]"), "ipcbench run: -transports: pipe: option pipe_size=64k: the server decides it"},
		{"shm-ring wait=spin", conn("-t", "shm-ring[wait=spin]"), "nothing listens there"},
		{"no -t", conn(), "ipcbench run: -connect: name the transport the server listens on with -t (one of tcp-localhost, tcp-public, unix, pipe, shm-lock, shm-ring)"},
		{"tcp-veth", conn("-t", "tcp-veth"), "ipcbench run: -t tcp-veth: its connections are handed to a child process as files, not dialed by address, so no server can be reached with -connect; choose another transport"},
		{"two transports", conn("-transports", "unix,pipe"), "ipcbench run: -connect: the server listens on one transport; give exactly one with -transports, not 2"},
		{"bad -network", conn("-t", "unix", "-network", "bogus"), `ipcbench run: -network "bogus": want netns or host`},
		{"-network netns", conn("-t", "unix", "-network", "netns"), "-connect measures a server on this host's network; -network netns cannot reach it"},
		{"unpinned", conn("-t", "unix", "-placement", "unpinned"), "nothing listens there"},
	})
}

// TestFlagGivenTwice: a flag given twice, in one spelling or in two
// (-d and -duration), is refused by every command, naming both as typed,
// before anything runs; the flag package alone keeps the last silently.
func TestFlagGivenTwice(t *testing.T) {
	goodRaw := filepath.Join("..", "..", "bench", "report", "testdata", "run.jsonl")
	checkUsage(t, []usageCase{
		{"run -d and -duration", append([]string{"run", "-d", "100ms", "-duration", "200ms"}, bogus...), "ipcbench run: -d 100ms and -duration 200ms: the same flag given twice; give it once (see 'ipcbench run -help')"},
		{"run -t twice", append([]string{"run", "-t", "unix", "-t", "pipe"}, bogus...), "ipcbench run: -t unix and -t pipe: the same flag given twice"},
		{"run -transports and -t", append([]string{"run", "-transports", "unix", "-t", "unix"}, bogus...), "-transports unix and -t unix: the same flag given twice"},
		{"run -out twice", append([]string{"run", "-out", "a", "-out", "b"}, bogus...), "-out a and -out b: the same flag given twice"},
		{"run -q and -quiet", append([]string{"run", "-q", "-quiet"}, bogus...), "-q and -quiet: the same flag given twice"},
		{"run -q=false and -q", append([]string{"run", "-q=false", "-q"}, bogus...), "-q=false and -q: the same flag given twice"},
		{"run -w and -workloads", append([]string{"run", "-w", "pingpong", "--workloads", "fanin"}, bogus...), "-w pingpong and -workloads fanin: the same flag given twice"},
		{"run -network twice", []string{"run", "-network", "host", "-network", "bogus"}, "-network host and -network bogus: the same flag given twice"},
		{"run empty value twice", append([]string{"run", "-placement", "", "-placement", "x"}, bogus...), `-placement "" and -placement x: the same flag given twice`},
		{"choose -s twice", []string{"choose", "-s", "64", "-s", "1k"}, "ipcbench choose: -s 64 and -s 1k: the same flag given twice"},
		{"floor -n twice", []string{"floor", "-n", "200", "-n", "300"}, "ipcbench floor: -n 200 and -n 300: the same flag given twice"},
		{"serve -t twice", []string{"serve", "-t", "unix", "-t", "pipe", "-listen", filepath.Join(t.TempDir(), "s")}, "ipcbench serve: -t unix and -t pipe: the same flag given twice"},
		{"report -format twice", []string{"report", "-format", "csv", "-format", "json", goodRaw}, "ipcbench report: -format csv and -format json: the same flag given twice"},
		{"plot -out twice", []string{"plot", "-out", t.TempDir(), "-out", t.TempDir(), goodRaw}, "the same flag given twice"},
		{"transports -network twice", []string{"transports", "-network", "host", "-network", "host"}, "ipcbench transports: -network host and -network host: the same flag given twice"},
	})
	// -help still names each flag's type (the flag package reads it from
	// the flag's own Value).
	_, help, _ := runCLI(t, "", "run", "-help")
	for _, want := range []string{"-d duration", "-t string", "-repeats int", "-q\tno progress"} {
		if !strings.Contains(help, want) {
			t.Errorf("run -help lost %q", want)
		}
	}
}

// TestRunOutCheckedBeforeConnect: an existing -out is refused before
// -connect reaches the server. Nothing listens at the address, so a probe
// made first would fail with the server's error instead.
func TestRunOutCheckedBeforeConnect(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "existing.jsonl")
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	checkUsage(t, []usageCase{
		{"existing out", []string{"run", "-t", "unix", "-connect", filepath.Join(dir, "nobody"), "-out", out}, "-out: " + out + ": file already exists (-force replaces it)"},
		{"out a directory", []string{"run", "-t", "unix", "-connect", filepath.Join(dir, "nobody"), "-out", dir, "-force"}, "a directory"},
		{"out a device", []string{"run", "-t", "unix", "-connect", filepath.Join(dir, "nobody"), "-out", os.DevNull}, "-out: " + os.DevNull + ": file already exists (a device or FIFO, which -force writes to in place)"},
	})
	if _, err := os.Stat(filepath.Join(dir, "nobody")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("something was made at the -connect address: %v", err)
	}
}

// TestQuietNamesDefaultOut: with -q and no -out, the records' made-up file
// name is still printed; with -out, -q prints nothing. Every peer start
// fails by script, so the run measures nothing.
func TestQuietNamesDefaultOut(t *testing.T) {
	for _, withOut := range []bool{false, true} {
		t.Run(fmt.Sprint("out=", withOut), func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			script := t.TempDir()
			if err := testpeer.Script(script, testpeer.Fail, testpeer.Fail); err != nil {
				t.Fatal(err)
			}
			t.Setenv(testpeer.Env, script)
			args := []string{"run", "-q", "-network", "host", "-t", "unix", "-w", "pingpong", "-s", "64", "-n", "20", "-warmup", "0", "-repeats", "1"}
			if withOut {
				args = append(args, "-out", "named.jsonl")
			}
			code, _, stderr := runCLI(t, "", args...)
			if code != exitPeerStart {
				t.Fatalf("exit %d, want %d (the case's peer failed twice); stderr:\n%s", code, exitPeerStart, stderr)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
			if len(files) != 1 {
				t.Fatalf("records files %v, want one", files)
			}
			named := strings.Contains(stderr, "raw records: "+filepath.Base(files[0])+"\n")
			if named == withOut {
				t.Errorf("-q, -out given %v: stderr names the records %v, want %v:\n%s", withOut, named, !withOut, stderr)
			}
		})
	}
}

// TestReportFileNames: standard input cannot be read twice, and a flag
// after the file names is not taken for a file without saying so.
func TestReportFileNames(t *testing.T) {
	goodRaw := filepath.Join("..", "..", "bench", "report", "testdata", "run.jsonl")
	checkUsage(t, []usageCase{
		{"compare stdin twice", []string{"compare", "-", "-"}, "- (standard input) given twice"},
		{"report stdin twice", []string{"report", "-", goodRaw, "-"}, "- (standard input) given twice"},
		{"plot stdin twice", []string{"plot", "-out", t.TempDir(), "-", "-"}, "- (standard input) given twice"},
		{"flag after a file", []string{"report", goodRaw, "-format", "csv"}, "-format after a file name is taken for a file; flags go before file names"},
		{"compare flag after the files", []string{"compare", goodRaw, goodRaw, "-q"}, "ipcbench compare: -q after a file name is taken for a file; flags go before file names"},
	})
}

// TestReportPlotFlagsNamed: report's unknown -format and plot's -out
// that it cannot write name the flag, without package plot's "plot: ".
func TestReportPlotFlagsNamed(t *testing.T) {
	goodRaw := filepath.Join("..", "..", "bench", "report", "testdata", "run.jsonl")
	dir := t.TempDir()
	if code, _, stderr := runCLI(t, "", "plot", "-out", dir, goodRaw); code != exitOK {
		t.Fatalf("plot: exit %d: %s", code, stderr)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	checkUsage(t, []usageCase{
		{"report -format", []string{"report", "-format", "bogus", goodRaw}, `ipcbench report: -format "bogus": unknown format (known: table,`},
		{"run -format", append([]string{"run", "-format", "bogus"}, bogus...), `ipcbench run: -format "bogus": unknown format (known: table,`},
		{"plot -out with charts", []string{"plot", "-out", dir, goodRaw}, "ipcbench plot: -out: " + filepath.Join(dir, "pingpong-p50-vs-size-unpinned.svg") + ": file already exists (-force replaces existing charts)"},
		{"plot -out under a file", []string{"plot", "-out", filepath.Join(file, "sub"), goodRaw}, "ipcbench plot: -out: cannot write the charts: "},
	})
	if _, _, stderr := runCLI(t, "", "plot", "-out", dir, goodRaw); strings.Contains(stderr, "plot: -out: plot:") || strings.Count(stderr, "plot:") != 1 {
		t.Errorf("plot's error %q names plot more than once", stderr)
	}
}

// failWriter fails every write, as stdout on a full disk does.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestCompareWriteError: the error of a failed write names no package or
// command twice.
func TestCompareWriteError(t *testing.T) {
	goodRaw := filepath.Join("..", "..", "bench", "report", "testdata", "run.jsonl")
	var errb bytes.Buffer
	code := run(context.Background(), []string{"compare", goodRaw, goodRaw}, strings.NewReader(""), failWriter{}, &errb)
	if code != exitFailure || errb.String() != "ipcbench compare: no space left on device\n" {
		t.Errorf("exit %d, stderr %q; want %d and the write's error alone", code, errb.String(), exitFailure)
	}
}

// TestCompareNothingInCommon: two runs with no case in common exit 1,
// saying so on stderr once, after the lists on stdout.
func TestCompareNothingInCommon(t *testing.T) {
	// A test run split in two: its unix records, and all the others.
	b, err := os.ReadFile(filepath.Join("..", "..", "bench", "report", "testdata", "run.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	unix, others := lines[0]+"\n", lines[0]+"\n"
	for _, l := range lines[1:] {
		var r bench.Result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.Transport == "unix" {
			unix += l + "\n"
		} else {
			others += l + "\n"
		}
	}
	dir := t.TempDir()
	a, z := filepath.Join(dir, "unix.jsonl"), filepath.Join(dir, "others.jsonl")
	if err := os.WriteFile(a, []byte(unix), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(z, []byte(others), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"compare", a, z}, strings.NewReader(""), &out, &errb)
	if code != exitFailure || errb.String() != "ipcbench compare: no case has OK repeats in both runs\n" {
		t.Errorf("exit %d, stderr %q; want %d and one line", code, errb.String(), exitFailure)
	}
	if !strings.Contains(out.String(), "only in old:\n  pingpong 64B unix") || !strings.Contains(out.String(), "only in new:\n") {
		t.Errorf("stdout lacks the lists:\n%s", out.String())
	}
}

// TestTransportsTable: a long reason does not widen the table's status
// column; it is printed below it, once, without "transport unavailable".
func TestTransportsTable(t *testing.T) {
	long := strings.Repeat("far too long a reason ", 8)
	var b bytes.Buffer
	err := writeTransports(&b, []transportRow{
		{name: "unix", doc: "a socket"},
		{name: "tcp-veth", doc: "a veth pair", err: fmt.Errorf("tcp-veth: %w: %s", transports.ErrUnavailable, long)},
		{name: "pipe", doc: "pipes", err: errors.New("pipe: listen: out of descriptors")},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	table, below, _ := strings.Cut(out, "\n\n")
	for _, l := range strings.Split(table, "\n") {
		if len(l) > 60 {
			t.Errorf("table row %q is %d wide: a reason widened it", l, len(l))
		}
	}
	if want := "tcp-veth unavailable: " + long + "\npipe broken: listen: out of descriptors\n"; below != want {
		t.Errorf("reasons below the table:\n%q\nwant\n%q", below, want)
	}
	if strings.Contains(out, transports.ErrUnavailable.Error()) {
		t.Errorf("the reason repeats %q:\n%s", transports.ErrUnavailable, out)
	}
}

// TestFirstSizeNote: a run given several sizes with -s says which of its
// workloads run at the first one only; without -s (the default suite,
// documented in -help), with one size, or with none of those workloads it
// says nothing.
func TestFirstSizeNote(t *testing.T) {
	const note = "at 64B only, the first size of -s"
	base := []string{"run", "-network", "host", "-t", "unix", "-d", "20ms", "-warmup", "0", "-repeats", "1", "-out", ""}
	for _, c := range []struct {
		name string
		args []string
		want string // "" for no note
	}{
		{"fanin and rate", []string{"-w", "fanin,rate,pingpong", "-s", "64,1k", "-conns", "1", "-rate", "1000"}, "fanin and rate run " + note},
		{"fanin", []string{"-w", "fanin,pingpong", "-s", "64,1k", "-conns", "1"}, "fanin runs " + note},
		{"fanin, -q", []string{"-w", "fanin", "-s", "64,1k", "-conns", "1", "-q"}, "fanin runs " + note}, // a warning, not progress
		{"fanin, -sizes", []string{"-w", "fanin,pingpong", "-sizes", "64,1k", "-conns", "1"}, "fanin runs at 64B only, the first size of -sizes"},
		{"one size", []string{"-w", "fanin", "-s", "1k", "-conns", "1"}, ""},
		{"no such workload", []string{"-w", "pingpong", "-s", "64,1k"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{}, base...)
			args[len(args)-1] = filepath.Join(t.TempDir(), "r.jsonl")
			args = append(args, c.args...)
			code, _, stderr := runCLI(t, "", args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := strings.Contains(stderr, "the first size of")
			if c.want == "" && got {
				t.Errorf("a note where none is due:\n%s", stderr)
			}
			if c.want != "" && !strings.Contains(stderr, c.want) {
				t.Errorf("stderr does not say %q:\n%s", c.want, stderr)
			}
		})
	}
	f := runFlags{typed: map[string]string{}}
	if n := f.firstSizeNote(bench.Options{Workloads: []string{"fanin"}, Sizes: []int{64, 1024}}); n != "" {
		t.Errorf("a note without -s: %q", n)
	}
}

// TestRunNotesQuiet: -q leaves out the note that only repeats -network
// host, and keeps those that say what was not measured as asked: the
// first size only, and no private network namespace.
func TestRunNotesQuiet(t *testing.T) {
	const fallback, host, size = "no private network namespace could be made", "measured on the host's own interfaces (-network host)", "fanin runs at 64B only"
	for _, c := range []struct {
		quiet, hostAsked  bool
		netNote, sizeNote string
		want              []string
	}{
		{false, false, fallback, size, []string{fallback, size}},
		{true, false, fallback, size, []string{fallback, size}},
		{true, false, fallback, "", []string{fallback}},
		{false, true, host, "", []string{host}},
		{true, true, host, size, []string{size}},
		{true, true, host, "", nil},
		{true, false, "", "", nil},
	} {
		if got := runNotes(c.quiet, c.hostAsked, c.netNote, c.sizeNote); !slices.Equal(got, c.want) {
			t.Errorf("runNotes(quiet %v, host asked %v, %q, %q) = %q; want %q", c.quiet, c.hostAsked, c.netNote, c.sizeNote, got, c.want)
		}
	}
}

// TestStdoutWriteError: a write to stdout that fails is exit 1 with the
// write's error in one line on stderr, for the help texts, version and
// plot's list of charts too, as for report and compare.
func TestStdoutWriteError(t *testing.T) {
	goodRaw := filepath.Join("..", "..", "bench", "report", "testdata", "run.jsonl")
	dir := t.TempDir()
	cases := [][]string{
		{"help"},
		{"-h"},
		{"help", "run"},
		{"version"},
		{"-version"},
		{"plot", "-out", dir, goodRaw},
	}
	for _, c := range commands() {
		if !c.hidden {
			cases = append(cases, []string{c.name, "-help"})
		}
	}
	for _, args := range cases {
		var errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), failWriter{}, &errb)
		name := args[0]
		switch {
		case helpWords[name] && len(args) > 1:
			name = args[1]
		case helpWords[name]:
			name = "help"
		case name == "-version":
			name = "version"
		}
		if want := "ipcbench " + name + ": no space left on device\n"; code != exitFailure || errb.String() != want {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", args, code, errb.String(), exitFailure, want)
		}
	}
}

// flagHelp returns the text -help gives flag name of command cmd.
func flagHelp(t *testing.T, cmd, name string) string {
	t.Helper()
	_, out, _ := runCLI(t, "", cmd, "-help")
	_, rest, ok := strings.Cut(out, "\n  -"+name+" ")
	if !ok {
		t.Fatalf("%s -help has no -%s:\n%s", cmd, name, out)
	}
	_, text, _ := strings.Cut(rest, "\n")
	text, _, _ = strings.Cut(text, "\n  -")
	return strings.Join(strings.Fields(text), " ")
}

// TestHelpStatesLimits: the limits a flag's value is held to, at least
// and at most, are in its -help text, formatted from the constants that
// enforce them, and a value past one is refused saying the same.
func TestHelpStatesLimits(t *testing.T) {
	over := func(n int64) string { return strconv.FormatInt(n+1, 10) }
	under := func(n int64) string { return strconv.FormatInt(n-1, 10) }
	for _, c := range []struct {
		cmd, flag string
		help      string   // in the flag's -help text
		args      []string // a value past the limit
		refusal   string   // in the one-line error
	}{
		{"floor", "n", fmt.Sprintf("at least %d", floor.MinPingPongN),
			[]string{"-n", under(floor.MinPingPongN)}, fmt.Sprintf("want at least %d", floor.MinPingPongN)},
		{"floor", "fanin-n", fmt.Sprintf("at least %d", floor.MinFaninN()),
			[]string{"-fanin-n", under(floor.MinFaninN())}, fmt.Sprintf("want at least one per connection (%d)", floor.MinFaninN())},
		{"floor", "stream-bytes", "at least " + bench.FormatSize(floor.MinStreamBytes),
			[]string{"-stream-bytes", under(floor.MinStreamBytes)}, "want at least " + bench.FormatSize(floor.MinStreamBytes)},
		{"floor", "stream-bytes", "at most " + units.FormatBytes(maxStreamBytes),
			[]string{"-stream-bytes", over(maxStreamBytes)}, "larger than the maximum " + units.FormatBytes(maxStreamBytes)},
		{"run", "conns", fmt.Sprintf("each at most %d", bench.MaxFaninConns),
			[]string{"-w", "fanin", "-conns", over(bench.MaxFaninConns), "-network", "bogus"}, fmt.Sprintf("out of range 1..%d", bench.MaxFaninConns)},
		{"run", "s", "each at most " + bench.FormatSize(bench.MaxMessageSize),
			[]string{"-s", over(bench.MaxMessageSize), "-network", "bogus"}, "larger than the maximum " + bench.FormatSize(bench.MaxMessageSize)},
		{"run", "buffer", "at most " + bench.FormatSize(maxBufferSize),
			[]string{"-buffer", over(maxBufferSize), "-network", "bogus"}, "larger than the maximum " + bench.FormatSize(maxBufferSize)},
	} {
		if got := flagHelp(t, c.cmd, c.flag); !strings.Contains(got, c.help) {
			t.Errorf("%s -help: -%s says %q, not %q", c.cmd, c.flag, got, c.help)
		}
		args := append([]string{c.cmd}, c.args...)
		if code, _, stderr := runCLI(t, "", args...); code != exitUsage || !strings.Contains(stderr, c.refusal) {
			t.Errorf("%q: exit %d, %q; want %d and %q", args, code, stderr, exitUsage, c.refusal)
		}
	}
}
