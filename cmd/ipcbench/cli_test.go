package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/internal/proc"
)

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t testing.TB, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := write("truncated.jsonl", `{"type":"header","version":1,"machine":{},"network":"host","options":{}}`+"\n"+`{"type":"result","workload":"pingpong","transp`)
	garbage := write("garbage.jsonl", "this is not json\n")
	empty := write("empty.jsonl", "")
	const hdr = `{"type":"header","version":1,"machine":{},"network":"host","options":{}}` + "\n"
	const res = `{"type":"result","workload":"pingpong","transport":"unix","variant":"unix","size":64,"conns":1,"placement":"unpinned","repeat":0,"status":"ok","duration_ns":1000,"messages":10,"bytes":640,"latency":"round-trip","hist":%q}` + "\n"
	newer := write("newer.jsonl", `{"type":"header","version":99,"machine":{},"network":"host","options":{}}`+"\n")
	headless := write("headless.jsonl", fmt.Sprintf(res, ""))
	badHist := write("badhist.jsonl", hdr+fmt.Sprintf(res, "not-a-histogram!"))
	binary := write("binary.jsonl", "\x00\xff\xfe\x01garbage\n")
	headerOnly := write("header-only.jsonl", hdr)
	// A file where a socket would go, in a directory open to others (as
	// /tmp is): the file is what is wrong, and what the error names.
	openDir := filepath.Join(dir, "open")
	if err := os.Mkdir(openDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fileInOpenDir := filepath.Join(openDir, "file")
	if err := os.WriteFile(fileInOpenDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	floorHeaderOnly := write("floor-header-only.jsonl", `{"type":"header","version":1,"machine":{},"network":"host","options":{"suite":"floor"}}`+"\n")
	// short keeps a run small in case a check it tests were missing.
	short := []string{"-w", "pingpong", "-s", "64", "-n", "20", "-warmup", "0", "-repeats", "1", "-out", filepath.Join(dir, "ran.jsonl")}
	// shortBut is short without the flag fl (and its value), which the
	// case gives itself: a flag given twice is refused.
	shortBut := func(fl string, more ...string) []string {
		i := slices.Index(short, fl)
		return append(slices.Concat(short[:i], short[i+2:]), more...)
	}
	goodRaw := filepath.Join("..", "..", "bench", "report", "testdata", "run.jsonl")
	cases := []struct {
		name string
		args []string
		code int
		want string // in the one-line error
	}{
		{"no command", nil, exitUsage, ""},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"unknown flag", []string{"run", "-bogus"}, exitUsage, "bogus"},
		{"unknown transport", []string{"run", "-t", "carrier-pigeon"}, exitUsage, "carrier-pigeon"},
		{"unknown workload", []string{"run", "-w", "sprint"}, exitUsage, `"sprint"`},
		{"malformed size", []string{"run", "-s", "12parsecs"}, exitUsage, "12parsecs"},
		{"zero size", []string{"run", "-s", "0"}, exitUsage, `"0"`},
		{"oversized size", []string{"run", "-s", "1GiB"}, exitUsage, "1GiB"},
		{"bad duration", []string{"run", "-d", "soon"}, exitUsage, "soon"},
		{"negative duration", []string{"run", "-d", "-1s"}, exitUsage, "-1s"},
		{"zero repeats", []string{"run", "-repeats", "0"}, exitUsage, "repeats"},
		{"bad conns", []string{"run", "-conns", "4,x"}, exitUsage, `"x"`},
		{"bad placement", []string{"run", "-placement", "moon"}, exitUsage, "moon"},
		{"pin and placement", append([]string{"run", "-t", "unix", "-pin", "0/0", "-placement", "cross-core"}, short...), exitUsage, "-pin 0/0 and -placement cross-core: give one"},
		{"empty pin", append([]string{"run", "-t", "unix", "-pin", ""}, short...), exitUsage, "-pin: empty value"},
		{"bad framing", []string{"run", "-framing", "smoke-signals"}, exitUsage, "smoke-signals"},
		{"bad peer model", []string{"run", "-peer-model", "goroutine,fork"}, exitUsage, `"fork"`},
		{"no peer model", []string{"run", "-peer-model", ","}, exitUsage, `-peer-model ",": no value in the list`},
		{"bad peer source", []string{"run", "-peer-source", "inherit,fork"}, exitUsage, `"fork"`},
		{"no peer source", []string{"run", "-peer-source", ","}, exitUsage, `-peer-source ",": no value in the list`},
		{"peer source with connect", []string{"run", "-t", "unix", "-connect", "/tmp/ipcb/s", "-peer-source", "serve"}, exitUsage, "-peer-source"},
		{"fixed stream", []string{"run", "-framing", "fixed", "-w", "stream"}, exitUsage, "fixed"},
		{"bad format", []string{"run", "-format", "pdf"}, exitUsage, "pdf"},
		{"bad network", []string{"run", "-network", "wifi"}, exitUsage, "wifi"},
		{"stray argument", []string{"run", "now"}, exitUsage, "now"},
		// Every command without positional arguments refuses one.
		{"version stray argument", []string{"version", "extra"}, exitUsage, `unexpected argument "extra" (ipcbench version takes none)`},
		{"transports stray argument", []string{"transports", "-network", "host", "extra"}, exitUsage, `unexpected argument "extra" (flags only; see 'ipcbench transports -help')`},
		{"serve on a file", []string{"serve", "-t", "unix", "-listen", fileInOpenDir}, exitUsage, fileInOpenDir + ": exists and is not a socket"},
		{"serve a rendezvous on a file", []string{"serve", "-t", "pipe", "-listen", fileInOpenDir}, exitUsage, fileInOpenDir + ": exists and is not a socket"},
		{"serve stray argument", []string{"serve", "-t", "unix", "-listen", filepath.Join(dir, "s"), "extra"}, exitUsage, `unexpected argument "extra"`},
		{"floor stray argument", []string{"floor", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"peer stray argument", []string{"peer", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"help stray argument", []string{"help", "run", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"report no files", []string{"report"}, exitUsage, "no raw-record files"},
		{"report missing file", []string{"report", filepath.Join(dir, "missing.jsonl")}, exitUsage, "missing.jsonl"},
		{"report a directory", []string{"report", dir}, exitUsage, "is a directory, not a file"},
		{"no connection count", []string{"run", "-w", "fanin", "-conns", ","}, exitUsage, `-conns ",": no value in the list`},
		{"choose zero connections", []string{"choose", "-s", "64", "-conns", "0"}, exitUsage, "-conns 0"},
		{"choose from a directory", []string{"choose", "-s", "64", "-from", dir}, exitUsage, "is a directory, not a file"},
		{"compare one file", []string{"compare", goodRaw}, exitUsage, "takes exactly two"},
		{"report truncated", []string{"report", truncated}, exitUsage, "truncated.jsonl"},
		{"report garbage", []string{"report", garbage}, exitUsage, "garbage.jsonl"},
		{"report empty", []string{"report", empty}, exitUsage, "empty.jsonl"},
		{"report newer schema", []string{"report", newer}, exitUsage, "newer"},
		{"report result before header", []string{"report", headless}, exitUsage, "headless.jsonl"},
		{"report bad histogram", []string{"report", badHist}, exitUsage, "histogram"},
		{"report binary file", []string{"report", binary}, exitUsage, "binary.jsonl"},
		{"compare newer schema", []string{"compare", newer, badHist}, exitUsage, "newer"},
		{"plot bad histogram", []string{"plot", "-out", t.TempDir(), badHist}, exitUsage, "histogram"},
		// A header alone is no records, like an empty file, for every reader.
		{"report header only", []string{"report", headerOnly}, exitUsage, "header-only.jsonl: no records, only a header"},
		{"plot header only", []string{"plot", "-out", t.TempDir(), headerOnly}, exitUsage, "header-only.jsonl: no records, only a header"},
		{"compare header only", []string{"compare", goodRaw, headerOnly}, exitUsage, "header-only.jsonl: no records, only a header"},
		{"choose from header only", []string{"choose", "-s", "64", "-from", headerOnly}, exitUsage, "header-only.jsonl: no records, only a header"},
		{"floor report header only", []string{"floor", "-report", floorHeaderOnly}, exitUsage, "floor-header-only.jsonl: no records, only a header"},
		{"report bad format", []string{"report", "-format", "pdf", truncated}, exitUsage, "pdf"},
		{"compare one file", []string{"compare", truncated}, exitUsage, "exactly two"},
		{"plot no files", []string{"plot"}, exitUsage, "no raw-record files"},
		{"plot out a file", []string{"plot", "-out", headerOnly, goodRaw}, exitUsage, "-out " + headerOnly + ": exists and is not a directory (plot writes one file per chart into a directory)"},
		{"plot out a file, before reading", []string{"plot", "-out", headerOnly, garbage}, exitUsage, "-out " + headerOnly + ": exists and is not a directory"},
		{"plot unwritable out", []string{"plot", "-out", "/proc/nonexist/x", goodRaw}, exitUsage, "/proc/nonexist"},
		// Variants: each transport checks its options before anything runs.
		{"bad io value", append([]string{"run", "-t", "unix[io=foo]"}, short...), exitUsage, `io="foo"`},
		{"negative sndbuf", append([]string{"run", "-t", "unix[sndbuf=-1]"}, short...), exitUsage, `sndbuf="-1"`},
		{"bad spin_ns", append([]string{"run", "-t", "shm-ring[spin_ns=abc]"}, short...), exitUsage, `spin_ns="abc"`},
		{"huge pipe_size", append([]string{"run", "-t", "pipe[pipe_size=1TiB]"}, short...), exitUsage, `pipe_size="1TiB"`},
		{"option of another transport", append([]string{"run", "-t", "unix[nodelay=false]"}, short...), exitUsage, "unknown option nodelay"},
		{"bad option in a list", append([]string{"run", "-t", "tcp-localhost,shm-lock[zerocopy=off]"}, short...), exitUsage, "unknown option zerocopy"},
		{"malformed variant", append([]string{"run", "-t", "unix[io=raw"}, short...), exitUsage, `missing "]"`},
		{"all with options", append([]string{"run", "-t", "all[io=raw]"}, short...), exitUsage, `"all" takes no options`},
		// A value given twice would run its cases twice.
		{"transport twice", append([]string{"run", "-t", "unix,pipe,unix"}, short...), exitUsage, "transport unix given twice"},
		{"transport twice through all", append([]string{"run", "-t", "all,pipe"}, short...), exitUsage, "transport pipe given twice"},
		{"pin a CPU not allowed", append([]string{"run", "-t", "unix", "-pin", "0/1023"}, short...), exitUsage, "-pin 0/1023: CPU 1023 is not one"},
		{"placement a CPU not allowed", append([]string{"run", "-t", "unix", "-placement", "0/1023"}, short...), exitUsage, "-placement 0/1023: CPU 1023 is not one"},
		{"default spelled out twice", append([]string{"run", "-t", "unix[io=netpoll],unix[io=netpoll]"}, short...), exitUsage, "transport unix[io=netpoll] given twice\n"},
		{"size twice", append([]string{"run", "-t", "unix"}, shortBut("-s", "-s", "1k,64,1024")...), exitUsage, "-s 1KiB given twice"},
		{"workload twice", append([]string{"run", "-t", "unix"}, shortBut("-w", "-w", "pingpong,pingpong")...), exitUsage, "-w pingpong given twice"},
		{"connection count twice", append([]string{"run", "-t", "unix"}, shortBut("-w", "-w", "fanin", "-conns", "4,4")...), exitUsage, "-conns 4 given twice"},
		{"placement twice", append([]string{"run", "-t", "unix"}, append(short, "-placement", "unpinned,unpinned")...), exitUsage, "placement unpinned given twice"},
		{"peer model twice", append([]string{"run", "-t", "unix"}, append(short, "-peer-model", "thread,thread")...), exitUsage, "-peer-model thread given twice"},
		{"peer source twice", append([]string{"run", "-t", "unix"}, append(short, "-peer-source", "address,address")...), exitUsage, "-peer-source address given twice"},
		{"choose transport twice", []string{"choose", "-s", "64", "-t", "unix,unix"}, exitUsage, "transport unix given twice"},
		{"zero case timeout", append([]string{"run", "-case-timeout", "0", "-t", "unix"}, short...), exitUsage, "-case-timeout 0s"},
		{"negative case timeout", append([]string{"run", "-case-timeout", "-1s", "-t", "unix"}, short...), exitUsage, "-case-timeout -1s"},
		{"case timeout within the duration", []string{"run", "-case-timeout", "150ms", "-t", "unix", "-w", "pingpong", "-s", "64", "-warmup", "100ms", "-d", "50ms", "-repeats", "1", "-out", filepath.Join(dir, "ran.jsonl")}, exitUsage, "more than the warm-up plus the duration (100ms + 50ms), 150ms"},
		{"case timeout within the warm-up", append([]string{"run", "-case-timeout", "100ms", "-t", "unix"}, shortBut("-warmup", "-warmup", "100ms")...), exitUsage, "more than the warm-up, 100ms"},
		{"placement outside the affinity mask", append([]string{"run", "-placement", "0/1023", "-t", "unix"}, short...), exitUsage, "CPU 1023"},
		{"unwritable out", append(append([]string{"run", "-t", "unix"}, short...), "-out", "/proc/nonexist/x"), exitUsage, "/proc/nonexist"},
		// choose: every mistake is exit 2 before anything is measured.
		{"choose no size", []string{"choose", "-w", "pingpong"}, exitUsage, "-s SIZE is required"},
		{"choose bad size", []string{"choose", "-s", "4 parsecs"}, exitUsage, "4 parsecs"},
		{"choose unknown workload", []string{"choose", "-w", "fanin", "-s", "4k"}, exitUsage, `-w "fanin": want pingpong, stream or http`},
		{"choose stream with conns", []string{"choose", "-w", "stream", "-s", "4k", "-conns", "4"}, exitUsage, "only pingpong"},
		{"choose bad placement", []string{"choose", "-s", "4k", "-placement", "moon"}, exitUsage, "moon"},
		{"choose bad transport", []string{"choose", "-s", "4k", "-t", "carrier-pigeon"}, exitUsage, "carrier-pigeon"},
		{"choose measurement-only", []string{"choose", "-s", "4k", "-t", "shm-ring[zerocopy=off]"}, exitUsage, "measurement-only"},
		{"choose bad format", []string{"choose", "-s", "4k", "-format", "yaml"}, exitUsage, "yaml"},
		{"choose bad budget", []string{"choose", "-s", "4k", "-budget", "-1s"}, exitUsage, "-budget"},
		{"choose from missing file", []string{"choose", "-s", "4k", "-from", filepath.Join(dir, "missing.jsonl")}, exitUsage, "missing.jsonl"},
		{"choose from garbage", []string{"choose", "-s", "4k", "-from", garbage}, exitUsage, "garbage.jsonl"},
		{"choose from and out", []string{"choose", "-s", "4k", "-from", goodRaw, "-out", filepath.Join(dir, "x.jsonl")}, exitUsage, "-out: only a calibration uses it"},
		{"choose stray argument", []string{"choose", "-s", "4k", "now"}, exitUsage, "now"},
		{"choose unwritable out", []string{"choose", "-s", "4k", "-t", "unix", "-out", "/proc/nonexist/x"}, exitUsage, "/proc/nonexist"},
		{"choose existing out", []string{"choose", "-s", "4k", "-t", "unix", "-out", goodRaw}, exitUsage, "-force"},
	}
	if runtime.NumCPU() <= 5 {
		cases = append(cases, struct {
			name string
			args []string
			code int
			want string
		}{"placement 5/7", append([]string{"run", "-placement", "5/7", "-t", "unix"}, short...), exitUsage, "CPU 5"})
	}
	t.Run("report header only from stdin", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, hdr, "report", "-")
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "stdin: no records, only a header") {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and only an error naming stdin", code, stdout, stderr, exitUsage)
		}
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout not empty on error: %q", stdout)
			}
			if c.want == "" {
				return
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 {
				t.Errorf("want a one-line error, got %d lines:\n%s", len(lines), stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("error %q does not name %q", stderr, c.want)
			}
			if w := repeatedPrefix(stderr); w != "" {
				t.Errorf("error %q repeats %q", stderr, w+": "+w+":")
			}
		})
	}
}

// repeatedPrefix returns the word of a "word: word:" repetition in msg
// ("report: report:", "peer failed to start: peer failed to start:"),
// or "".
func repeatedPrefix(msg string) string {
	parts := strings.Split(strings.TrimSpace(msg), ": ")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" && (parts[i] == parts[i-1] || strings.HasSuffix(parts[i-1], " "+parts[i])) {
			return parts[i]
		}
	}
	return ""
}

func TestRepeatedPrefix(t *testing.T) {
	for msg, want := range map[string]string{
		"ipcbench report: report: open x: no such file":           "report",
		"a: peer failed to start: peer failed to start: /bin/x":   "peer failed to start",
		"ipcbench run: -transports: unknown transport (valid: x)": "",
		"ipcbench report: open report: no such file":              "",
	} {
		if got := repeatedPrefix(msg); got != want {
			t.Errorf("repeatedPrefix(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runCLI(t, "", "help")
	if code != exitOK || !strings.Contains(out, "Exit codes") || strings.Contains(out, "  peer ") {
		t.Fatalf("help: exit %d\n%s", code, out)
	}
	// Exit 141 is every command's when its output goes away, not serve's
	// alone: the others are killed by SIGPIPE, as any filter is.
	if !strings.Contains(out, "141 a write to stdout or stderr found it\ngone") || !strings.Contains(out, "killed by SIGPIPE") {
		t.Errorf("help: exit 141 is not said to be any command's on a closed pipe:\n%s", out)
	}
	// Only a command with flags has a Flags section.
	noFlags := map[string]bool{"compare": true, "version": true}
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		cmd := c.name
		code, out, _ := runCLI(t, "", cmd, "-help")
		if code != exitOK || !strings.Contains(out, "Usage: ipcbench "+cmd) {
			t.Errorf("%s -help: exit %d\n%s", cmd, code, out)
		}
		if got := strings.Contains(out, "\nFlags:\n"); got == noFlags[cmd] {
			t.Errorf("%s -help: Flags section %v, want %v:\n%s", cmd, got, !noFlags[cmd], out)
		}
		if first, _, _ := strings.Cut(out, "\n"); strings.HasSuffix(first, " ") {
			t.Errorf("%s -help: usage line %q ends in a space", cmd, first)
		}
		if noFlags[cmd] && strings.Contains(out, "\n\n\n") {
			t.Errorf("%s -help: blank lines where the flags would be:\n%s", cmd, out)
		}
		if cmd != "version" && !strings.Contains(out, "Examples:") {
			t.Errorf("%s -help has no examples", cmd)
		}
	}
}

// TestHelpSaysDirectoriesAreCreated: every flag naming a file that
// createOutput (or plot's charts) makes says that missing directories are
// made too.
func TestHelpSaysDirectoriesAreCreated(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"run":    {"out"},
		"choose": {"out"},
		"floor":  {"out", "raw"},
		"serve":  {"summary"},
		"plot":   {"out"},
	} {
		_, out, _ := runCLI(t, "", cmd, "-help")
		for _, name := range flags {
			_, rest, ok := strings.Cut(out, "\n  -"+name+" ")
			if !ok {
				t.Errorf("%s -help has no -%s:\n%s", cmd, name, out)
				continue
			}
			// The flag's name line, then its text, indented.
			_, text, _ := strings.Cut(rest, "\n")
			text, _, _ = strings.Cut(text, "\n  -")
			if !strings.Contains(text, "missing directories are created") {
				t.Errorf("%s -help: -%s does not say missing directories are created: %q", cmd, name, text)
			}
		}
	}
}

func TestPeerRefusesToRunByHand(t *testing.T) {
	t.Setenv("IPCBENCH_PEER_COOKIE", "")
	os.Unsetenv("IPCBENCH_PEER_COOKIE")
	code, _, stderr := runCLI(t, "", "peer")
	if code == exitOK || !strings.Contains(stderr, "cannot be run by hand") {
		t.Fatalf("peer by hand: exit %d, stderr %q", code, stderr)
	}
}

func TestTransportsLists(t *testing.T) {
	code, out, stderr := runCLI(t, "", "transports")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, n := range []string{"tcp-localhost", "tcp-public", "tcp-veth", "unix", "pipe", "shm-lock"} {
		if !strings.Contains(out, n) {
			t.Errorf("transport %s not listed:\n%s", n, out)
		}
	}
	if !strings.Contains(out, "measurement-only (never recommended by choose): zerocopy=off") {
		t.Errorf("shm-ring's measurement-only variant is not marked:\n%s", out)
	}
	if netns.HasHermeticNetwork() && strings.Contains(out, "unavailable") {
		t.Errorf("inside the private namespace every transport should be available:\n%s", out)
	}
}

// TestRunReportRoundTrip runs a tiny suite end to end through the CLI, then
// renders its raw records in every format.
func TestRunReportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "run.jsonl")
	trs := "tcp-localhost,unix,pipe,shm-lock"
	if netns.HasHermeticNetwork() {
		trs += ",tcp-public"
	}
	code, out, stderr := runCLI(t, "", "run", "-q=false", "-t", trs, "-w", "pingpong,stream", "-s", "64",
		"-n", "50", "-warmup", "5ms", "-repeats", "2", "-out", raw)
	if code != exitOK {
		t.Fatalf("run: exit %d\nstderr:\n%s", code, stderr)
	}
	for _, n := range strings.Split(trs, ",") {
		if !strings.Contains(out, n) {
			t.Errorf("ranking does not list %s:\n%s", n, out)
		}
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("progress drawn on a non-terminal stderr: %q", stderr)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if want := 1 + 2*2*len(strings.Split(trs, ",")); len(lines) != want {
		t.Fatalf("%d raw lines, want %d", len(lines), want)
	}
	var hdr map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	if netns.HasHermeticNetwork() && !strings.HasPrefix(hdr["network"].(string), "private-netns") {
		t.Errorf("network recorded as %v", hdr["network"])
	}
	for _, f := range []string{"table", "markdown", "csv", "json", "benchfmt"} {
		code, out, stderr := runCLI(t, "", "report", "-format", f, raw)
		if code != exitOK || out == "" {
			t.Errorf("report -format %s: exit %d, %d bytes out, stderr %s", f, code, len(out), stderr)
		}
	}
	// stdin as input
	code, out, _ = runCLI(t, string(b), "report", "-format", "csv", "-")
	if code != exitOK || !strings.Contains(out, "pingpong") {
		t.Errorf("report from stdin: exit %d\n%s", code, out)
	}
	code, out, stderr = runCLI(t, "", "compare", raw, raw)
	if code != exitOK || !strings.Contains(out, "~") {
		t.Errorf("compare a run with itself: exit %d, want all ~\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "", "plot", "-out", filepath.Join(dir, "plots"), raw)
	if code != exitOK || !strings.Contains(out, ".svg") {
		t.Errorf("plot: exit %d\n%s%s", code, out, stderr)
	}
}

// TestCaseTimeoutTooShort: a -case-timeout that passes before the case
// ends (while its peer starts, or at the latest long before 10^8 round
// trips) fails the case on that timeout and says so; it is neither a peer
// that failed to start (exit 3) nor "no handshake within 30s".
func TestCaseTimeoutTooShort(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "run.jsonl")
	code, _, stderr := runCLI(t, "", "run", "-q", "-case-timeout", "20ms", "-t", "unix", "-w", "pingpong", "-s", "64",
		"-n", "100000000", "-warmup", "0", "-repeats", "1", "-out", raw)
	if code != exitFailure || strings.Contains(stderr, "no handshake within") {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailure, stderr)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "case did not finish within 20ms") || strings.Contains(string(b), "no handshake within") {
		t.Errorf("the record does not name the case timeout:\n%s", b)
	}
}

// TestHelpOfHelp: help asked of help itself, in any spelling, is the
// top-level help (it recursed until the stack overflowed), and help of the
// hidden peer says what it is, not that the user typed -help to it.
func TestHelpOfHelp(t *testing.T) {
	_, top, _ := runCLI(t, "", "help")
	for _, args := range [][]string{
		{"help", "help"}, {"help", "-help"}, {"help", "--help"}, {"-help", "-h"}, {"-h", "help"}, {"--help", "-help"},
	} {
		code, out, errOut := runCLI(t, "", args...)
		if code != exitOK || out != top || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and the top-level help", args, code, out, errOut)
		}
	}
	code, out, errOut := runCLI(t, "", "help", "peer")
	const want = "ipcbench help: peer is internal: the peer process (started by ipcbench itself); it has no help\n"
	if code != exitUsage || out != "" || errOut != want {
		t.Errorf("help peer: exit %d, stdout %q, stderr %q; want %d and %q", code, out, errOut, exitUsage, want)
	}
	if code, out, _ := runCLI(t, "", "help", "run"); code != exitOK || !strings.HasPrefix(out, "Usage: ipcbench run ") {
		t.Errorf("help run: exit %d\n%s", code, out)
	}
}

// TestPlotHelpNamesEveryChart: plot -help names every kind of chart plot
// writes (by its file name's pattern), and plot writes no other, so that
// the two cannot drift apart: the test data has every kind.
func TestPlotHelpNamesEveryChart(t *testing.T) {
	_, help, _ := runCLI(t, "", "plot", "-help")
	var patterns []*regexp.Regexp
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z0-9-]+-[A-Z-]+\.svg) `).FindAllStringSubmatch(help, -1) {
		p := regexp.QuoteMeta(m[1])
		p = strings.ReplaceAll(p, "PLACEMENT", `[^/]+`)
		p = strings.ReplaceAll(p, "SIZE", `[0-9]+[KMG]?i?B`)
		patterns = append(patterns, regexp.MustCompile("^"+p+"$"))
	}
	if len(patterns) == 0 {
		t.Fatalf("plot -help names no chart file:\n%s", help)
	}
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "", "plot", "-out", dir, filepath.Join("..", "..", "bench", "report", "testdata", "run.jsonl"))
	if code != exitOK {
		t.Fatalf("plot: exit %d: %s", code, errOut)
	}
	used := make([]bool, len(patterns))
	for _, path := range strings.Fields(out) {
		name := filepath.Base(path)
		found := false
		for i, re := range patterns {
			if re.MatchString(name) {
				found, used[i] = true, true
			}
		}
		if !found {
			t.Errorf("plot wrote %s, a chart plot -help does not name", name)
		}
	}
	for i, re := range patterns {
		if !used[i] {
			t.Errorf("plot -help names %s, which plot did not write from data with every workload", re)
		}
	}
}

// TestRunInsidePeer: `ipcbench run` in a process that was itself started
// as a peer starts none (a program that forgot peer.RunIfPeer would
// otherwise start copies of itself): exit 3 with the reason, no records
// file, and no "raw records:" line naming one.
func TestRunInsidePeer(t *testing.T) {
	t.Setenv(proc.CookieEnv, proc.CookieValue)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	code, _, stderr := runCLI(t, "", "run", "-t", "unix", "-w", "pingpong", "-s", "64", "-d", "50ms", "-warmup", "0", "-repeats", "1", "-network", "host", "-out", out)
	if code != exitPeerStart || !strings.Contains(stderr, "peer.RunIfPeer") {
		t.Errorf("exit %d, stderr %q; want %d saying to call peer.RunIfPeer", code, stderr, exitPeerStart)
	}
	if strings.Contains(stderr, "raw records:") {
		t.Errorf("stderr names a records file, though none was kept:\n%s", stderr)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
		t.Errorf("files left: %v", ents)
	}
}
