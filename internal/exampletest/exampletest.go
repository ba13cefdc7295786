// Package exampletest builds and runs the example programs under
// examples/ as their tests need them: each example is a main package that
// a user runs as it is, and its test starts it as separate processes.
package exampletest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/netns"
)

// Build compiles the main package in dir (relative to the test's working
// directory, "." for the test's own package) into a temporary directory
// with the go command that runs the test, and returns the binary's path.
func Build(t testing.TB, dir string) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(mustAbs(t, dir)))
	cmd := exec.Command(goCmd, "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", dir, err, out)
	}
	return bin
}

func mustAbs(t testing.TB, dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// Server is a server process started by Start.
type Server struct {
	// Addr is the first line the server printed: the address to dial.
	Addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	logs  *strings.Builder // read only once Wait returned
}

// Start runs bin with args as a server that prints the address to dial on
// its first line of standard output and runs until its standard input
// closes. It fails the test when no line arrives within 30 s.
func Start(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{cmd: cmd, stdin: stdin, logs: logs}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		} else {
			line <- ""
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case s.Addr = <-line:
	case <-time.After(30 * time.Second):
	}
	if s.Addr == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%s %s printed no address; stderr:\n%s", bin, strings.Join(args, " "), logs)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return s
}

// Stop closes the server's standard input and waits for it to exit; the
// error says how it exited, with its standard error.
func (s *Server) Stop() error {
	s.stdin.Close()
	return s.wait()
}

// Signal sends sig to the server and waits for it to exit, as Stop does.
func (s *Server) Signal(sig os.Signal) error {
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling the server: %w", err)
	}
	return s.wait()
}

// wait waits up to 10 s for the server to exit (then kills it); the error
// says how it exited, with its standard error.
func (s *Server) wait() error {
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return &exitErr{err: err, logs: s.logs.String()}
		}
		return nil
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
		return &exitErr{err: os.ErrDeadlineExceeded, logs: s.logs.String()}
	}
}

type exitErr struct {
	err  error
	logs string
}

func (e *exitErr) Error() string { return "server: " + e.err.Error() + "; stderr:\n" + e.logs }
func (e *exitErr) Unwrap() error { return e.err }

// Run runs bin with args to completion and returns its standard output;
// a non-zero exit fails the test with its standard error.
func Run(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := run(bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// run runs bin with args to completion and returns its standard output,
// or an error that names the command and carries its standard error.
func run(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// Main runs the tests of m inside a private network namespace when one can
// be made, so that tcp-public has a non-loopback address that is not the
// host's, and exits with their status; without one it says so on stderr
// and runs them here (InNamespace then reports false).
func Main(m *testing.M) {
	if !netns.HasHermeticNetwork() {
		code, exit, err := netns.Enter(os.Args[1:]...)
		if exit {
			os.Exit(code)
		}
		if err != nil {
			os.Stderr.WriteString("no private network namespace (" + err.Error() + "): tcp-public is left out\n")
		}
	}
	os.Exit(m.Run())
}

// SocketPath returns where a server of transport name listens in a test:
// "" for the TCP transports (they pick their own port), else a path in a
// directory of the test that does not exist yet, so the transport makes
// it closed to other users (0700) as it requires (unix listens there;
// pipe, shm-lock and shm-ring put their rendezvous socket there).
func SocketPath(t testing.TB, name string) string {
	if strings.HasPrefix(name, "tcp-") {
		return ""
	}
	return filepath.Join(t.TempDir(), "private", name+".sock")
}

// ServeWithoutAddr checks what a server started without -addr does for
// each transport of names that has no default address (pipe, shm-lock,
// shm-ring): it must print a socket path in a fresh directory closed to
// others (0700) under TMPDIR, which a client ("-t NAME -addr ADDRESS" and
// client's arguments) dials, its output containing want(name), and remove
// that directory when it stops, by its standard input closing and by
// SIGINT, SIGTERM and SIGHUP. TMPDIR is a directory of the test, so
// nothing is left in the system's.
func ServeWithoutAddr(t *testing.T, bin string, names []string, client []string, want func(name string) string) {
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, stop := range []struct {
				how string
				sig os.Signal // nil: close its standard input
			}{{"stdin", nil}, {"SIGINT", syscall.SIGINT}, {"SIGTERM", syscall.SIGTERM}, {"SIGHUP", syscall.SIGHUP}} {
				tmp := t.TempDir()
				t.Setenv("TMPDIR", tmp)
				srv := Start(t, bin, "-serve", "-t", name)
				dir := filepath.Dir(srv.Addr)
				if filepath.Dir(dir) != tmp {
					t.Errorf("address %q: not in a directory of its own in TMPDIR %s", srv.Addr, tmp)
				}
				if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
					t.Errorf("the address's directory %s: %v, %v; want mode 0700", dir, st, err)
				}
				out, err := run(bin, append([]string{"-t", name, "-addr", srv.Addr}, client...)...)
				if err != nil {
					srv.Stop()
					t.Fatal(err)
				}
				if w := want(name); !strings.Contains(out, w) {
					t.Errorf("client: output %q does not say %q", out, w)
				}
				if stop.sig == nil {
					err = srv.Stop()
				} else {
					err = srv.Signal(stop.sig)
				}
				if err != nil {
					t.Errorf("stopped by %s: %v", stop.how, err)
				}
				if ents, err := os.ReadDir(tmp); err != nil || len(ents) != 0 {
					t.Errorf("stopped by %s, the server left %v in TMPDIR (%v); want nothing", stop.how, ents, err)
				}
			}
		})
	}
}

// ServeAndCall runs one subtest per transport name: it starts bin as a
// server ("-serve -t NAME -addr SocketPath(NAME)"), runs bin as a client
// once per entry of clients ("-t NAME -addr ADDRESS", ADDRESS being what
// the server printed, and the entry's arguments), checks that the i-th
// client's output contains want(name, i), and stops the server, which
// must exit cleanly. tcp-public is skipped outside a private network
// namespace (see Main), and tcp-veth always: it has no address.
func ServeAndCall(t *testing.T, bin string, names []string, clients [][]string, want func(name string, i int) string) {
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if name == "tcp-public" && !netns.HasHermeticNetwork() {
				t.Skip("tcp-public only inside a private network namespace")
			}
			if name == "tcp-veth" {
				t.Skip("tcp-veth dials from inside a network namespace its listener hands to a child; a separately started process has no address to dial")
			}
			srv := Start(t, bin, "-serve", "-t", name, "-addr", SocketPath(t, name))
			for i, args := range clients {
				out, err := run(bin, append([]string{"-t", name, "-addr", srv.Addr}, args...)...)
				if err != nil {
					// The server's side of the story: whether it was still
					// serving, or how it had exited, with its standard error.
					server := "exited with status 0 when stopped (it was still serving, or had already ended cleanly)"
					if serr := srv.Stop(); serr != nil {
						server = serr.Error()
					}
					t.Fatalf("%v\nthe server: %s", err, server)
				}
				if w := want(name, i); !strings.Contains(out, w) {
					t.Errorf("client %v: output %q does not say %q", args, out, w)
				}
			}
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
}
