package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// quickRun are the flags of a short run against a remote peer: every
// case measures 40 messages, however slow the machine, in one repeat.
// A run with fanin adds -conns 2 (without fanin -conns is refused).
var quickRun = []string{"-s", "64", "-n", "40", "-warmup", "10ms", "-repeats", "1", "-q"}

// server is a process that listens and prints "listening on ADDRESS".
type server struct {
	cmd    *exec.Cmd
	addr   string
	out    *bytes.Buffer // stdout after the listening line
	stderr *bytes.Buffer
	done   chan struct{}
}

// startServer starts cmd and waits for its "listening on ADDRESS" line.
func startServer(t *testing.T, cmd *exec.Cmd) *server {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, out: &bytes.Buffer{}, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
			cmd.Wait()
		}
	})
	lines := make(chan string, 1)
	go func() {
		defer close(s.done)
		br := bufio.NewReader(stdout)
		line, _ := br.ReadString('\n')
		lines <- line
		io.Copy(s.out, br)
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
		if !ok {
			t.Fatalf("%v: first line %q, want \"listening on ADDRESS\"; stderr: %s", cmd.Args, line, s.stderr)
		}
		s.addr = addr
	case <-time.After(20 * time.Second):
		t.Fatalf("%v: no listening line within 20s", cmd.Args)
	}
	return s
}

// stop sends SIGINT and returns the exit code and the output after the
// listening line.
func (s *server) stop(t *testing.T) (int, string) {
	t.Helper()
	s.cmd.Process.Signal(os.Interrupt)
	timer := time.AfterFunc(20*time.Second, func() { s.cmd.Process.Kill() })
	defer timer.Stop()
	<-s.done
	err := s.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, s.out.String()
}

// startServe starts `ipcbench serve args...` as its own process.
func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	return startServer(t, serveCommand(t, args...))
}

// serveCommand is the command `ipcbench serve args...`, not started.
func serveCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), envAsCLI+"=1")
	return cmd
}

// unixListenAddr is an address for `serve -t unix -listen`: a socket
// path in a directory that Listen makes, private.
func unixListenAddr(t *testing.T) string {
	return filepath.Join(t.TempDir(), "ipcb", "s")
}

// readRecords reads a raw file: the header and the results.
func readRecords(t *testing.T, path string) (bench.Header, []bench.Result) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var h bench.Header
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil {
		t.Fatal(err)
	}
	var rs []bench.Result
	for _, l := range lines[1:] {
		var r bench.Result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return h, rs
}

// checkRun runs the CLI and checks that it passed, every case OK, and
// that the records name the remote peer.
func checkRun(t *testing.T, peerDesc string, args ...string) []bench.Result {
	t.Helper()
	out := filepath.Join(t.TempDir(), "run.jsonl")
	code, _, stderr := runCLI(t, "", append(append([]string{"run"}, args...), "-out", out)...)
	h, rs := readRecords(t, out)
	if code != 0 {
		for _, r := range rs {
			if r.Status != bench.StatusOK {
				t.Errorf("%s %s: %s: %s", r.Workload, r.Transport, r.Status, r.Reason)
			}
		}
		t.Fatalf("run %v: exit %d: %s", args, code, stderr)
	}
	if h.Peer != peerDesc || h.Options["peer"] != peerDesc {
		t.Fatalf("header peer %q (options %q), want %q", h.Peer, h.Options["peer"], peerDesc)
	}
	for _, r := range rs {
		if r.Status != bench.StatusOK {
			t.Fatalf("%s %s: %s: %s", r.Workload, r.Transport, r.Status, r.Reason)
		}
		// The run did not start this server: it knows neither how it was
		// started nor its server model.
		if r.PeerSource != bench.SourceConnect || r.PeerModel != "" {
			t.Fatalf("%s %s: peer source %q, model %q; want %q and none", r.Workload, r.Transport, r.PeerSource, r.PeerModel, bench.SourceConnect)
		}
	}
	return rs
}

func TestServeAndConnect(t *testing.T) {
	for _, tc := range []struct{ transport, listen string }{
		{"tcp-localhost", "127.0.0.1:0"},
		{"unix", unixListenAddr(t)},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			s := startServe(t, "-t", tc.transport, "-listen", tc.listen)
			args := append([]string{"-t", tc.transport, "-connect", s.addr, "-w", "pingpong,stream,fanin,rate,connect", "-rate", "2000", "-conns", "2"}, quickRun...)
			// Two bench clients at once, then one more after them.
			var wg sync.WaitGroup
			var mu sync.Mutex
			var all [][]bench.Result
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rs := checkRun(t, "serve "+s.addr, args...)
					mu.Lock()
					all = append(all, rs)
					mu.Unlock()
				}()
			}
			wg.Wait()
			rs := checkRun(t, "serve "+s.addr, args...)
			for _, r := range rs {
				if r.PeerCPUUnknown || r.PeerUserNS+r.PeerSysNS <= 0 {
					t.Errorf("%s: peer CPU %d+%d ns, unknown=%v: want the server's CPU time", r.Workload, r.PeerUserNS, r.PeerSysNS, r.PeerCPUUnknown)
				}
			}
			code, out := s.stop(t)
			if code != 0 {
				t.Fatalf("serve exit %d on SIGINT; stderr: %s", code, s.stderr)
			}
			// 3 runs × 5 cases sessions, and each run's probe.
			if !strings.Contains(s.stderr.String(), "ipcbench serve: stopped: sessions=15 probes=3 ") || !strings.Contains(s.stderr.String(), "errors=0") {
				t.Errorf("summary: %q (stdout %q)", s.stderr, out)
			}
			if tc.transport == "unix" {
				if _, err := os.Lstat(s.addr); !os.IsNotExist(err) {
					t.Errorf("socket %s left behind after serve stopped (%v)", s.addr, err)
				}
			}
		})
	}
}

func TestServeRecordsPeerHeader(t *testing.T) {
	s := startServe(t, "-t", "tcp-localhost", "-listen", "127.0.0.1:0", "-summary", "-")
	out := filepath.Join(t.TempDir(), "run.jsonl")
	code, _, stderr := runCLI(t, "", append([]string{"run", "-t", "tcp-localhost", "-connect", s.addr, "-w", "pingpong", "-out", out}, quickRun...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	h, _ := readRecords(t, out)
	if !strings.HasPrefix(h.PeerTool, "ipcbench ") || h.PeerMachine["kernel"] == "" || h.Network != networkHost {
		t.Fatalf("header: peer tool %q, peer machine %v, network %q", h.PeerTool, h.PeerMachine, h.Network)
	}
	if code, summary := s.stop(t); code != 0 || !strings.Contains(summary, "sessions=1 probes=1 echo_clients=0") {
		t.Fatalf("serve exit %d, summary on stdout %q", code, summary)
	}
}

// serveTCP accepts loopback TCP connections until the test ends and runs
// handle on each in its own goroutine; it returns the address.
func serveTCP(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(transporttest.AcceptEach(ln, handle))
	return ln.Addr().String()
}

// startEchoServer starts a Go echo server (length-prefixed framing) that
// misbehaves after n good messages per connection as bad says: "stall"
// (reads, never answers), "half" (writes half a frame and closes), "wrong"
// (answers with other bytes). It returns the address.
func startEchoServer(t *testing.T, n int, bad string) string {
	return serveTCP(t, func(c net.Conn) {
		hdr := make([]byte, 4)
		for i := 0; ; i++ {
			if _, err := io.ReadFull(c, hdr); err != nil {
				return
			}
			body := make([]byte, int(hdr[0])<<24|int(hdr[1])<<16|int(hdr[2])<<8|int(hdr[3]))
			if _, err := io.ReadFull(c, body); err != nil {
				return
			}
			frame := append(hdr, body...)
			if i >= n {
				switch bad {
				case "stall":
					io.Copy(io.Discard, c)
					return
				case "half":
					c.Write(frame[:len(frame)/2])
					return
				case "wrong":
					for j := 4; j < len(frame); j++ {
						frame[j] ^= 0xff
					}
				}
			}
			if _, err := c.Write(frame); err != nil {
				return
			}
		}
	})
}

// startFakeServe starts a server that answers every connection's first
// line with answer (and then waits for the client to close).
func startFakeServe(t *testing.T, answer string) string {
	return serveTCP(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return
		}
		io.WriteString(c, answer)
		io.Copy(io.Discard, c)
	})
}

// TestConnectBadInput: whatever is wrong with the server at -connect, the
// run says so in one line and exits 2 before any case runs.
func TestConnectBadInput(t *testing.T) {
	dir := t.TempDir()
	py := startPythonEcho(t, "127.0.0.1:0")
	pyUnix := startPythonEcho(t, filepath.Join(dir, "echo.sock"))
	pyLines := startPythonEcho(t, "127.0.0.1:0", "--framing", "delimited")
	link := filepath.Join(dir, "link.sock")
	if err := os.Symlink(pyUnix.addr, link); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.sock")
	fl, err := net.Listen("unix", foreign)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Skipf("cannot give the socket to uid 65534 (tests run as root): %v", err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := closed.Addr().String()
	closed.Close()
	newer := startFakeServe(t, "ipcbench-ok/2 session=abc tool=ipcbench v9\n")
	refused := startFakeServe(t, "ipcbench-error protocol version mismatch: the client speaks ipcbench-hello/1, this server ipcbench-hello/2 (server ipcbench v9)\n")
	silent := startFakeServe(t, "")
	shm := startServe(t, "-t", "shm-ring", "-listen", unixListenAddr(t), "-q")
	wrong := startEchoServer(t, 0, "wrong")
	half := startEchoServer(t, 0, "half")
	pp := []string{"-w", "pingpong", "-q"} // -w unless the case gives its own
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nobody listens tcp", []string{"-t", "tcp-localhost", "-connect", nobody}, "connection refused"},
		{"nobody listens unix", []string{"-t", "unix", "-connect", filepath.Join(dir, "none.sock")}, "nothing listens there"},
		{"symlink", []string{"-t", "unix", "-connect", link, "-peer", "echo"}, "symbolic link"},
		{"another user's socket", []string{"-t", "unix", "-connect", foreign, "-peer", "echo"}, "belongs to user 65534"},
		{"echo server as serve", []string{"-t", "tcp-localhost", "-connect", py.addr}, "closed the connection instead of answering the hello"},
		{"line echo server as serve", []string{"-t", "tcp-localhost", "-connect", pyLines.addr}, "sent the hello back"},
		{"newer serve", []string{"-t", "tcp-localhost", "-connect", newer}, "protocol version mismatch"},
		{"serve refuses our version", []string{"-t", "tcp-localhost", "-connect", refused}, "protocol version mismatch"},
		{"not an echo", []string{"-t", "tcp-localhost", "-connect", wrong, "-peer", "echo"}, "differs"},
		{"closes mid-message", []string{"-t", "tcp-localhost", "-connect", half, "-peer", "echo"}, "closed the connection"},
		{"another transport's serve", []string{"-t", "shm-lock", "-connect", shm.addr}, "the server serves shm-ring, not shm-lock (run with -t shm-ring)"},
		{"unix at a rendezvous", []string{"-t", "unix", "-connect", shm.addr}, "is not a unix server's socket"},
		{"silent server", []string{"-t", "tcp-localhost", "-connect", silent}, "ipcbench run: -connect: " + silent + ": no ipcbench serve answered: no answer to the hello within 5s (a server of another protocol that waits for more, or a serve that is stopped or stuck)"},
		{"stream against echo", []string{"-t", "tcp-localhost", "-connect", py.addr, "-peer", "echo", "-w", "stream"}, "stream workload needs the receiver's acknowledgement"},
		{"two transports", []string{"-t", "tcp-localhost,unix", "-connect", py.addr}, "exactly one"},
		{"peer echo without connect", []string{"-t", "unix", "-peer", "echo"}, "needs -connect"},
		{"bad peer kind", []string{"-t", "unix", "-connect", py.addr, "-peer", "http"}, "want serve or echo"},
		{"server model", []string{"-t", "tcp-localhost", "-connect", py.addr, "-peer-model", "thread"}, "ipcbench run: -peer-model thread: the server models are those of the peer the run starts"},
		{"netns", []string{"-t", "tcp-localhost", "-connect", py.addr, "-peer", "echo", "-network", "netns"}, "cannot reach it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pp := pp
			if slices.Contains(tc.args, "-w") {
				pp = pp[2:] // a flag given twice is refused
			}
			args := append(append([]string{"run"}, pp...), tc.args...)
			args = append(args, "-out", filepath.Join(t.TempDir(), "out.jsonl"))
			code, _, stderr := runCLI(t, "", args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line with %q", code, stderr, tc.want)
			}
			if p := repeatedPrefix(stderr); p != "" {
				t.Errorf("repeated prefix %q in %q", p, stderr)
			}
		})
	}
}

// TestConnectFailsCase: a server that goes wrong after the probe fails
// the case with the reason, without hanging.
func TestConnectFailsCase(t *testing.T) {
	for _, tc := range []struct{ bad, want string }{
		{"stall", "timeout"},
		{"half", "closed the connection"},
		{"wrong", "failed their payload check"},
	} {
		t.Run(tc.bad, func(t *testing.T) {
			addr := startEchoServer(t, 1, tc.bad) // the probe's message is echoed
			out := filepath.Join(t.TempDir(), "out.jsonl")
			args := append([]string{"run", "-t", "tcp-localhost", "-connect", addr, "-peer", "echo", "-w", "pingpong", "-case-timeout", "2s", "-out", out}, quickRun...)
			code, _, stderr := runCLI(t, "", args...)
			if code != exitFailure {
				t.Fatalf("exit %d, want 1: %s", code, stderr)
			}
			_, rs := readRecords(t, out)
			if len(rs) != 1 || rs[0].Status != bench.StatusFailed || !strings.Contains(rs[0].Reason, tc.want) {
				t.Fatalf("records %+v; want one failed case whose reason says %q", rs, tc.want)
			}
		})
	}
}

func TestServeBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "tcp-localhost"}, "-t and -listen are both required"},
		{[]string{"-listen", "127.0.0.1:0"}, "-t and -listen are both required"},
		{[]string{"-t", "tcp-localhost", "-listen", "0.0.0.0:0"}, "not a loopback address"},
		{[]string{"-t", "tcp-localhost", "-listen", "[::]:5000"}, "not a loopback address"},
		{[]string{"-t", "nope", "-listen", "127.0.0.1:0"}, "unknown transport"},
		{[]string{"-t", "tcp-localhost", "-listen", "127.0.0.1:0", "-framing", "fixed"}, "needs -size"},
		{[]string{"-t", "tcp-localhost", "-listen", "127.0.0.1:0", "-size", "64"}, "only for -framing fixed"},
		{[]string{"-t", "tcp-localhost", "-listen", "127.0.0.1:0", "extra"}, "unexpected argument"},
		{[]string{"-t", "tcp-veth", "-listen", "10.0.0.1:0"}, "tcp-veth"},
	} {
		code, _, stderr := runCLI(t, "", append([]string{"serve"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("serve %v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestServeRefusesHostWithoutPort: serve over TCP refuses a -listen
// address without a port (exit 2, one line, before it listens: nothing on
// stdout), which run -connect would refuse too, rather than listen on a
// port nobody was told.
func TestServeRefusesHostWithoutPort(t *testing.T) {
	for _, tc := range []struct{ transport, listen string }{
		{"tcp-localhost", "127.0.0.1"},
		{"tcp-localhost", "127.0.0.1:"},
		{"tcp-localhost", "::1"},
		{"tcp-public", "10.77.0.1"},
	} {
		// A serve that listened after all is stopped, to fail below
		// rather than hang.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		var out, errb bytes.Buffer
		code := run(ctx, []string{"serve", "-t", tc.transport, "-listen", tc.listen}, strings.NewReader(""), &out, &errb)
		cancel()
		want := "ipcbench serve: -listen " + tc.listen + ": no port; " + tc.transport + " listens on host:port (127.0.0.1:5000; port 0 picks a free one"
		if code != exitUsage || !strings.HasPrefix(errb.String(), want) || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 || out.Len() != 0 {
			t.Errorf("serve -t %s -listen %s: exit %d, stdout %q, stderr %q; want exit 2, nothing on stdout and one line starting %q", tc.transport, tc.listen, code, out.String(), errb.String(), want)
		}
	}
}

// TestServeRefusesFileMapping: serve over shm-* with mapping=file, whose
// file cannot be sealed and which any client would receive (and could
// shrink, crashing serve with SIGBUS), is refused with exit 2 and one line
// that says why, before serve listens: nothing is made at the address,
// nothing printed on stdout. The default mapping serves (TestServeRendezvous).
func TestServeRefusesFileMapping(t *testing.T) {
	for _, spec := range []string{"shm-ring[mapping=file]", "shm-lock[mapping=file]"} {
		dir := filepath.Join(t.TempDir(), "rv")
		// A serve that listened after all is stopped, to fail below
		// rather than hang.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		var out, errb bytes.Buffer
		code := run(ctx, []string{"serve", "-t", spec, "-listen", filepath.Join(dir, "s")}, strings.NewReader(""), &out, &errb)
		cancel()
		stdout, stderr := out.String(), errb.String()
		t.Logf("serve -t %s: exit %d, stderr %q", spec, code, stderr)
		if code != exitUsage || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("serve -t %s: exit %d, stderr %q; want exit %d and one line", spec, code, stderr, exitUsage)
		}
		for _, want := range []string{"-t " + spec, "mapping=file", "SIGBUS", "memfd"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("serve -t %s: stderr %q does not say %q", spec, stderr, want)
			}
		}
		if stdout != "" {
			t.Errorf("serve -t %s: stdout %q, want nothing", spec, stdout)
		}
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Errorf("serve -t %s: made %s (%v)", spec, dir, err)
		}
	}
}

// TestServeMaxConnsBadValue: a -max-conns that is no count of
// connections is exit 2 with one line naming it, before serve listens
// (the socket's directory, which Listen would make, is not there).
func TestServeMaxConnsBadValue(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"-1", "-max-conns -1: want the most connections served at once, 1 or more, or 0 for the default"},
		{"abc", `invalid value "abc" for flag -max-conns`},
		{"1.5", `invalid value "1.5" for flag -max-conns`},
	} {
		listen := unixListenAddr(t)
		code, out, stderr := runCLI(t, "", "serve", "-t", "unix", "-listen", listen, "-max-conns", tc.value)
		if code != exitUsage || out != "" || !strings.HasPrefix(stderr, "ipcbench serve: ") || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("serve -max-conns %s: exit %d, stdout %q, stderr %q; want exit %d and one line with %q", tc.value, code, out, stderr, exitUsage, tc.want)
		}
		if _, err := os.Lstat(filepath.Dir(listen)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("serve -max-conns %s: %s is there (%v): serve listened", tc.value, filepath.Dir(listen), err)
		}
	}
}

// TestServeMaxConns: serve -max-conns 1 serves one connection and
// refuses the next with the reason, counted in the summary's errors.
func TestServeMaxConns(t *testing.T) {
	s := startServe(t, "-t", "tcp-localhost", "-listen", "127.0.0.1:0", "-framing", "delimited", "-max-conns", "1")
	first, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(first, "hi\n")
	if line, err := bufio.NewReader(first).ReadString('\n'); line != "hi\n" {
		t.Fatalf("the first connection: %q, %v; want its line back", line, err)
	}
	second, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(second)
	const want = peer.ErrorPrefix + "this server serves at most 1 connection at once (ipcbench serve -max-conns) and 1 is open"
	if err != nil || !strings.HasPrefix(string(got), want) {
		t.Fatalf("the second connection: %q, %v; want %q... and closed", got, err, want)
	}
	if code, _ := s.stop(t); code != 0 || !strings.Contains(s.stderr.String(), "errors=1") || !strings.Contains(s.stderr.String(), "refused: this server serves at most 1") {
		t.Fatalf("serve exit %d; stderr %s", code, s.stderr)
	}
}

// TestServeRefusesOtherVersion: a client of another protocol version gets
// one line that says so.
func TestServeRefusesOtherVersion(t *testing.T) {
	s := startServe(t, "-t", "tcp-localhost", "-listen", "127.0.0.1:0", "-q")
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "ipcbench-hello/2 control\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "ipcbench-error protocol version mismatch: the client speaks ipcbench-hello/2, this server ipcbench-hello/1") {
		t.Fatalf("answer %q", line)
	}
	if code, _ := s.stop(t); code != 0 || !strings.Contains(s.stderr.String(), "errors=1") {
		t.Fatalf("serve exit %d; stderr %s", code, s.stderr)
	}
}

// TestServeRendezvous: pipe and the shm transports are served by address
// through their rendezvous socket, to two runs one after the other, with
// control connections on the control socket beside it (a symlink there is
// refused by the client), and both sockets and their directory are gone
// once serve stopped.
func TestServeRendezvous(t *testing.T) {
	for _, tr := range []string{"pipe", "shm-lock", "shm-ring"} {
		t.Run(tr, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rv")
			s := startServe(t, "-t", tr, "-listen", filepath.Join(dir, "s"))
			ctlPath := s.addr + peer.ControlSuffix
			if fi, err := os.Lstat(ctlPath); err != nil || fi.Mode().Type() != os.ModeSocket {
				t.Fatalf("no control socket at %s while serving (%v)", ctlPath, err)
			}
			args := append([]string{"-t", tr, "-connect", s.addr, "-w", "pingpong,stream,fanin,connect", "-conns", "2"}, quickRun...)
			for range 2 {
				checkRun(t, "serve "+s.addr, args...)
			}
			// The client refuses a control path that is a symbolic link:
			// a hard link of the rendezvous with a symlink beside it.
			other := filepath.Join(t.TempDir(), "s")
			if err := os.Link(s.addr, other); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(ctlPath, other+peer.ControlSuffix); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLI(t, "", append([]string{"run", "-out", filepath.Join(t.TempDir(), "o.jsonl"), "-t", tr, "-connect", other, "-conns", "2"}, quickRun...)...)
			if code != exitUsage || !strings.Contains(stderr, "symbolic link") {
				t.Errorf("run -connect with a symlinked control path: exit %d, stderr %q", code, stderr)
			}
			if code, _ := s.stop(t); code != 0 {
				t.Fatalf("serve exit %d; stderr %s", code, s.stderr)
			}
			if !strings.Contains(s.stderr.String(), " errors=0") {
				t.Errorf("serve summary %q, want no errors (no control hello refused on the transport)", s.stderr)
			}
			for _, p := range []string{s.addr, ctlPath, dir} {
				if _, err := os.Lstat(p); !os.IsNotExist(err) {
					t.Errorf("%s left behind (%v)", p, err)
				}
			}
		})
	}
}

// TestServeSummaryFile: a serve that cannot start leaves nothing behind
// for -summary (no file, no directory for it, an existing file with
// -force as it was), so the same command works once the address is
// fixed; a serve that stops puts its summary in place of the file -force
// replaces, which stays whole while it serves.
func TestServeSummaryFile(t *testing.T) {
	dir := t.TempDir()
	notSocket := filepath.Join(t.TempDir(), "not-a-socket") // in a private directory
	if err := os.WriteFile(notSocket, []byte("a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := filepath.Join(dir, "sub", "sum.txt")
	code, _, stderr := runCLI(t, "", "serve", "-t", "unix", "-listen", notSocket, "-summary", sum)
	if code != exitUsage || !strings.Contains(stderr, "cannot listen") {
		t.Fatalf("serve on a plain file: exit %d: %s", code, stderr)
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Errorf("a serve that could not start left %v", ents)
	}

	if err := os.MkdirAll(filepath.Dir(sum), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sum, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "", "serve", "-t", "unix", "-listen", notSocket, "-summary", sum, "-force")
	if code != exitUsage {
		t.Fatalf("serve -force on a plain file: exit %d: %s", code, stderr)
	}
	checkOnly := func(want string) {
		t.Helper()
		if b, err := os.ReadFile(sum); err != nil || !strings.HasPrefix(string(b), want) {
			t.Errorf("%s holds %q (%v), want %q first", sum, b, err, want)
		}
		if left := partials(t, sum); len(left) > 0 {
			t.Errorf("left beside %s: %v", sum, left)
		}
	}
	checkOnly("precious")

	s := startServe(t, "-t", "unix", "-listen", unixListenAddr(t), "-summary", sum, "-force")
	if b, _ := os.ReadFile(sum); string(b) != "precious" {
		t.Errorf("%s while serving: %q, want it as it was", sum, b)
	}
	if code, _ := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d: %s", code, s.stderr)
	}
	checkOnly("ipcbench serve: stopped: ")
}

// TestServeStopsWhenOutputGoes: a serve whose stdout or stderr goes away
// (a pipe whose reader closed it, as after 'serve | head -1') is not
// killed by SIGPIPE: it stops as on SIGTERM, its -summary file committed,
// and exits 141, having removed its sockets and their directory; one whose
// stdout is gone before it could say where it listens leaves nothing,
// not even the summary file it had started.
func TestServeStopsWhenOutputGoes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		closed string // the output whose reader is closed
		early  bool   // closed before serve starts
	}{
		{"stdout while serving", "stdout", false},
		{"stderr while serving", "stderr", false},
		{"stdout before listening", "stdout", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rv")
			sum := filepath.Join(t.TempDir(), "sum.txt")
			cmd := serveCommand(t, "-t", "shm-ring", "-listen", filepath.Join(dir, "s"), "-summary", sum)
			outR, outW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			errR, errW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer outR.Close()
			defer errR.Close()
			cmd.Stdout, cmd.Stderr = outW, errW
			readers := map[string]*os.File{"stdout": outR, "stderr": errR}
			if tc.early {
				readers[tc.closed].Close()
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			outW.Close()
			errW.Close()
			exited := make(chan struct{})
			defer func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
					<-exited
				}
			}()
			go func() { cmd.Wait(); close(exited) }()
			var stderr bytes.Buffer
			stderrRead := make(chan struct{})
			if tc.closed != "stderr" {
				go func() { io.Copy(&stderr, errR); close(stderrRead) }()
			} else {
				close(stderrRead)
			}
			if !tc.early {
				line, err := bufio.NewReader(outR).ReadString('\n')
				if !strings.HasPrefix(line, "listening on ") {
					t.Fatalf("first line %q (%v), want the listening line", line, err)
				}
				readers[tc.closed].Close()
			}
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				t.Fatalf("serve still running 20s after its %s went away", tc.closed)
			}
			<-stderrRead
			st := cmd.ProcessState
			if !st.Exited() || st.ExitCode() != exitOutputGone {
				t.Fatalf("serve ended with %v, want exit %d; stderr: %s", st, exitOutputGone, &stderr)
			}
			if tc.closed == "stdout" && !strings.Contains(stderr.String(), "ipcbench serve: stopped: its stdout was closed (broken pipe)") {
				t.Errorf("stderr %q does not say that stdout went away", &stderr)
			}
			for _, p := range []string{filepath.Join(dir, "s"), filepath.Join(dir, "s") + peer.ControlSuffix, dir} {
				if _, err := os.Lstat(p); !os.IsNotExist(err) {
					t.Errorf("%s left behind (%v)", p, err)
				}
			}
			if left := partials(t, sum); len(left) > 0 {
				t.Errorf("left beside %s: %v", sum, left)
			}
			b, err := os.ReadFile(sum)
			switch {
			case tc.early && !os.IsNotExist(err):
				t.Errorf("a serve that could not say where it listens left %s (%q, %v)", sum, b, err)
			case !tc.early && !strings.HasPrefix(string(b), "ipcbench serve: stopped: sessions="):
				t.Errorf("%s holds %q (%v), want the summary", sum, b, err)
			}
		})
	}
}

// TestServeHelpTransports: serve -help lists the transports serve can
// serve, and every one it refuses (tcp-veth) is left out and refused
// before listening, with the reason.
func TestServeHelpTransports(t *testing.T) {
	_, out, _ := runCLI(t, "", "serve", "-help")
	_, line, ok := strings.Cut(out, "\nTransports: ")
	if !ok {
		t.Fatalf("serve -help has no Transports line:\n%s", out)
	}
	line, _, _ = strings.Cut(line, "\n")
	listed := strings.Split(line, ", ")
	for _, tr := range all.List() {
		if transports.DialsByAddress(tr) != slices.Contains(listed, tr.Name()) {
			t.Errorf("serve -help lists %q; %s dials by address: %v", line, tr.Name(), transports.DialsByAddress(tr))
		}
		if transports.DialsByAddress(tr) {
			continue
		}
		code, _, errOut := runCLI(t, "", "serve", "-t", tr.Name(), "-listen", "10.78.0.1:0")
		if want := "ipcbench serve: -t " + tr.Name() + ": its connections are handed to a child process as files, not dialed by address"; code != exitUsage || !strings.HasPrefix(errOut, want) {
			t.Errorf("serve -t %s: exit %d, %q; want %d and %q", tr.Name(), code, errOut, exitUsage, want)
		}
	}
	if slices.Contains(listed, "tcp-veth") {
		t.Errorf("serve -help lists tcp-veth, which serve refuses: %q", line)
	}
}

// TestServeSummaryWriteError: a -summary file whose write fails is exit 1
// and one line naming the file once (not "writing /dev/full: write
// /dev/full: ...").
func TestServeSummaryWriteError(t *testing.T) {
	const full = "/dev/full"
	if f, err := os.OpenFile(full, os.O_WRONLY, 0); err != nil {
		t.Skip(full, "cannot be opened:", err)
	} else {
		f.Close()
	}
	s := startServe(t, "-t", "unix", "-listen", unixListenAddr(t), "-summary", full, "-force")
	code, _ := s.stop(t)
	const want = "ipcbench serve: writing the summary to /dev/full: no space left on device\n"
	if code != exitFailure || s.stderr.String() != want {
		t.Errorf("serve -summary %s: exit %d, stderr %q; want %d and %q", full, code, s.stderr, exitFailure, want)
	}
}
