package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// howtoDir holds the Python HOWTO echo server and client.
const howtoDir = "../../examples/howto"

// python3 returns the interpreter, or skips the test when there is none.
func python3(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	return p
}

// startPythonEcho starts examples/howto/echo_server.py on addr.
func startPythonEcho(t *testing.T, addr string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(python3(t), append([]string{filepath.Join(howtoDir, "echo_server.py"), addr}, args...)...)
	return startServer(t, cmd)
}

// TestHowtoEchoServer: ipcbench run -connect -peer echo measures the
// HOWTO's server over unix and tcp, every byte checked, and the server
// counts no error.
func TestHowtoEchoServer(t *testing.T) {
	for _, tc := range []struct{ transport, addr, framing string }{
		{"tcp-localhost", "127.0.0.1:0", "length"},
		{"unix", filepath.Join(t.TempDir(), "echo.sock"), "length"},
		{"unix", filepath.Join(t.TempDir(), "echo.sock"), "delimited"},
	} {
		t.Run(tc.transport+"-"+tc.framing, func(t *testing.T) {
			s := startPythonEcho(t, tc.addr, "--framing", tc.framing)
			rs := checkRun(t, "echo "+s.addr, append([]string{"-t", tc.transport, "-connect", s.addr, "-peer", "echo", "-framing", tc.framing,
				"-w", "pingpong,fanin,rate,connect", "-rate", "1000", "-conns", "2"}, quickRun...)...)
			for _, r := range rs {
				if !r.PeerCPUUnknown || r.PeerUserNS != 0 || r.PeerSysNS != 0 {
					t.Errorf("%s: peer CPU %d+%d unknown=%v; want it recorded as unknown", r.Workload, r.PeerUserNS, r.PeerSysNS, r.PeerCPUUnknown)
				}
			}
			code, out := s.stop(t)
			if code != 0 || !regexp.MustCompile(`messages=[1-9]\d* bytes=\d+ clients=\d+ errors=0`).MatchString(out) {
				t.Fatalf("echo server exit %d, summary %q, stderr %s", code, out, s.stderr)
			}
		})
	}
}

// TestHowtoEchoClient: ipcbench serve answers the HOWTO's client as an
// echo server, and its summary counts what the client sent.
func TestHowtoEchoClient(t *testing.T) {
	py := python3(t)
	for _, tc := range []struct{ transport, listen, framing string }{
		{"tcp-localhost", "127.0.0.1:0", "length"},
		{"unix", unixListenAddr(t), "length"},
		{"unix", unixListenAddr(t), "delimited"},
	} {
		t.Run(tc.transport+"-"+tc.framing, func(t *testing.T) {
			s := startServe(t, "-t", tc.transport, "-listen", tc.listen, "-framing", tc.framing)
			for range 2 {
				out, err := exec.Command(py, filepath.Join(howtoDir, "echo_client.py"), s.addr, "--count", "200", "--size", "100", "--framing", tc.framing).CombinedOutput()
				if err != nil || !strings.HasPrefix(string(out), "messages=200 bytes=20000 ") {
					t.Fatalf("echo client: %v: %s", err, out)
				}
			}
			code, _ := s.stop(t)
			if code != 0 || !strings.Contains(s.stderr.String(), "stopped: sessions=0 probes=0 echo_clients=2 messages=400 bytes=40000 errors=0") {
				t.Fatalf("serve exit %d; stderr %s", code, s.stderr)
			}
		})
	}
}
