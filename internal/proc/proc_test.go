package proc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
)

// children returns the pids of this process's children (zombies included).
func children(tb testing.TB) []int {
	tb.Helper()
	files, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		tb.Fatal(err)
	}
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited
		}
		for _, s := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(s)
			if err != nil {
				tb.Fatalf("%s: %v", f, err)
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// noChildrenAfter fails the test if it leaves a child process behind.
func noChildrenAfter(tb testing.TB) {
	tb.Helper()
	tb.Cleanup(func() {
		if c := children(tb); len(c) > 0 {
			tb.Errorf("child processes left behind: %v", c)
		}
	})
}

// startHelper starts the test binary as a helper peer in mode.
func startHelper(tb testing.TB, mode string, s proc.Spec) *proc.Peer {
	tb.Helper()
	s.Env = append(s.Env, "PROC_TEST_MODE="+mode)
	p, err := proc.Start(context.Background(), s)
	if err != nil {
		tb.Fatalf("Start(%s): %v", mode, err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

func recvTimeout(tb testing.TB, p *proc.Peer, v any) error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Recv(ctx, v)
}

func TestSendRecvClose(t *testing.T) {
	noChildrenAfter(t)
	p := startHelper(t, "echo", proc.Spec{})
	if p.PID() <= 0 || p.PID() == os.Getpid() {
		t.Fatalf("PID() = %d", p.PID())
	}
	for i := range 3 {
		want := msg{Op: "echo", N: i, Text: "line\nwith newline"}
		if err := p.Send(want); err != nil {
			t.Fatalf("Send: %v", err)
		}
		var got msg
		if err := recvTimeout(t, p, &got); err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if got != want {
			t.Fatalf("Recv = %+v, want %+v", got, want)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-p.Exited():
	default:
		t.Fatal("Exited not closed after Close")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := p.Send(msg{Op: "echo"}); !errors.Is(err, proc.ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if err := recvTimeout(t, p, &msg{}); !errors.Is(err, proc.ErrClosed) {
		t.Fatalf("Recv after Close = %v, want ErrClosed", err)
	}
	if !strings.Contains(p.Logs(), "helper: up") {
		t.Fatalf("Logs() = %q, want the helper's log", p.Logs())
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		spec    proc.Spec
		want    []string
		wantErr error
	}{
		{name: "no handshake", mode: "sleep", spec: proc.Spec{StartTimeout: 300 * time.Millisecond}, want: []string{"no handshake within 300ms"}},
		{name: "garbage", mode: "garbage", want: []string{`unexpected first line on stdout "PASS"`}},
		{name: "version", mode: "badversion", want: []string{"handshake version 99"}},
		{name: "wrong pid", mode: "wrongpid", want: []string{"handshake from pid"}},
		{name: "early exit", mode: "earlyexit", want: []string{"exited before the handshake", "exit status 7", "peer stderr: helper: cannot start: no transport"}},
		{name: "no executable", spec: proc.Spec{Path: "/nonexistent/ipcbench"}, want: []string{"/nonexistent/ipcbench"}, wantErr: os.ErrNotExist},
		{name: "negative timeout", spec: proc.Spec{StartTimeout: -1}, want: []string{"negative start timeout"}},
		{name: "bad cpu", mode: "echo", spec: proc.Spec{CPUs: []int{-1}}, want: []string{"CPU -1"}, wantErr: sysinfo.ErrBadCPUList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noChildrenAfter(t)
			s := tt.spec
			s.Env = append(s.Env, "PROC_TEST_MODE="+tt.mode)
			p, err := proc.Start(context.Background(), s)
			if err == nil {
				p.Close()
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, proc.ErrPeerStart) {
				t.Errorf("error %v does not wrap ErrPeerStart", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestStartContextCancelled(t *testing.T) {
	noChildrenAfter(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	_, err := proc.Start(ctx, proc.Spec{Env: []string{"PROC_TEST_MODE=sleep"}})
	if !errors.Is(err, proc.ErrPeerStart) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context = %v, want ErrPeerStart and context.Canceled", err)
	}
}

// TestStartCallerDeadline: a deadline of the caller's that passes before
// the start timeout is reported as the caller's, not as "no handshake
// within" the start timeout (which did not pass).
func TestStartCallerDeadline(t *testing.T) {
	noChildrenAfter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := proc.Start(ctx, proc.Spec{Env: []string{"PROC_TEST_MODE=sleep"}, StartTimeout: time.Minute})
	if !errors.Is(err, proc.ErrPeerStart) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start past the caller's deadline = %v, want ErrPeerStart and context.DeadlineExceeded", err)
	}
	if strings.Contains(err.Error(), "no handshake within") {
		t.Errorf("the caller's deadline reported as the start timeout: %v", err)
	}
}

func TestPeerExit(t *testing.T) {
	noChildrenAfter(t)
	p := startHelper(t, "echo", proc.Spec{})
	if err := p.Send(msg{Op: "exit", N: 3}); err != nil {
		t.Fatal(err)
	}
	err := recvTimeout(t, p, &msg{})
	if !errors.Is(err, proc.ErrPeerExited) {
		t.Fatalf("Recv after the peer exited = %v, want ErrPeerExited", err)
	}
	for _, w := range []string{"exit status 3", "helper: exiting with 3"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Recv error %q does not contain %q", err, w)
		}
	}
	<-p.Exited()
	if err := p.Close(); !errors.Is(err, proc.ErrPeerExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Close = %v, want ErrPeerExited with the status", err)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, proc.ErrPeerExited) {
		t.Fatalf("Signal after exit = %v, want ErrPeerExited", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill after exit = %v, want nil", err)
	}
}

func TestRecvContextKeepsLine(t *testing.T) {
	noChildrenAfter(t)
	p := startHelper(t, "echo", proc.Spec{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Recv(ctx, &msg{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv with nothing to read = %v, want DeadlineExceeded", err)
	}
	want := msg{Op: "echo", N: 7}
	if err := p.Send(want); err != nil {
		t.Fatal(err)
	}
	var got msg
	if err := recvTimeout(t, p, &got); err != nil || got != want {
		t.Fatalf("Recv = %+v, %v; want %+v", got, err, want)
	}
}

func TestRecvBadLine(t *testing.T) {
	noChildrenAfter(t)
	p := startHelper(t, "echo", proc.Spec{})
	if err := p.Send(msg{Op: "raw", Text: "not json"}); err != nil {
		t.Fatal(err)
	}
	err := recvTimeout(t, p, &msg{})
	if err == nil || !strings.Contains(err.Error(), `"not json"`) {
		t.Fatalf("Recv of a bad line = %v, want an error quoting it", err)
	}
	want := msg{Op: "echo", N: 1}
	if err := p.Send(want); err != nil {
		t.Fatal(err)
	}
	var got msg
	if err := recvTimeout(t, p, &got); err != nil || got != want {
		t.Fatalf("Recv after a bad line = %+v, %v; want %+v", got, err, want)
	}
}

// TestRecvLine: RecvLine returns a line as written, JSON or not, without
// its newline, and the lines after it still reach Recv.
func TestRecvLine(t *testing.T) {
	noChildrenAfter(t)
	p := startHelper(t, "echo", proc.Spec{})
	if err := p.Send(msg{Op: "raw", Text: "listening on /tmp/x"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if line, err := p.RecvLine(ctx); err != nil || line != "listening on /tmp/x" {
		t.Fatalf("RecvLine = %q, %v; want the raw line", line, err)
	}
	want := msg{Op: "echo", N: 2}
	if err := p.Send(want); err != nil {
		t.Fatal(err)
	}
	var got msg
	if err := recvTimeout(t, p, &got); err != nil || got != want {
		t.Fatalf("Recv after RecvLine = %+v, %v; want %+v", got, err, want)
	}
}

func TestCloseKillsStubbornPeer(t *testing.T) {
	noChildrenAfter(t)
	p := startHelper(t, "ignore-eof", proc.Spec{})
	err := p.Close()
	if !errors.Is(err, proc.ErrPeerExited) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Close of a peer ignoring EOF = %v, want ErrPeerExited saying it was killed", err)
	}
	select {
	case <-p.Exited():
	default:
		t.Fatal("Exited not closed after Close")
	}
}

func TestKillAndSignal(t *testing.T) {
	tests := []struct {
		name string
		do   func(*proc.Peer) error
		want string
	}{
		{"kill", (*proc.Peer).Kill, "signal: killed"},
		{"sigterm", func(p *proc.Peer) error { return p.Signal(syscall.SIGTERM) }, "signal: terminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noChildrenAfter(t)
			p := startHelper(t, "echo", proc.Spec{})
			if err := tt.do(p); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.Exited():
			case <-time.After(10 * time.Second):
				t.Fatal("peer did not exit")
			}
			err := recvTimeout(t, p, &msg{})
			if !errors.Is(err, proc.ErrPeerExited) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Recv = %v, want ErrPeerExited with %q", err, tt.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogsTailAndTee(t *testing.T) {
	noChildrenAfter(t)
	var tee syncBuffer
	p := startHelper(t, "echo", proc.Spec{Stderr: &tee})
	const chunk = "0123456789abcdef"
	n := 2 * proc.LogTailSize / len(chunk)
	if err := p.Send(msg{Op: "log", Text: chunk, N: n}); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(msg{Op: "exit"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	logs := p.Logs()
	if len(logs) != proc.LogTailSize {
		t.Errorf("len(Logs()) = %d, want %d", len(logs), proc.LogTailSize)
	}
	if !strings.HasSuffix(logs, chunk+"helper: exiting with 0\n") {
		t.Errorf("Logs() does not end with the last output: ...%q", logs[max(0, len(logs)-80):])
	}
	if got := strings.Count(tee.String(), chunk); got != n {
		t.Errorf("Stderr writer got %d chunks, want %d", got, n)
	}
}

func TestAnnounce(t *testing.T) {
	tests := []struct {
		name    string
		cookie  string
		parent  string
		wantErr error
	}{
		{"no cookie", "", strconv.Itoa(os.Getppid()), proc.ErrNotPeer},
		{"wrong cookie", "let-me-in", strconv.Itoa(os.Getppid()), proc.ErrNotPeer},
		{"no parent", proc.CookieValue, "", proc.ErrNotPeer},
		{"parent gone", proc.CookieValue, strconv.Itoa(os.Getppid() + 1), proc.ErrParentGone},
		{"ok", proc.CookieValue, strconv.Itoa(os.Getppid()), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(proc.CookieEnv, tt.cookie)
			t.Setenv(proc.ParentEnv, tt.parent)
			if got, want := proc.IsPeer(), tt.cookie == proc.CookieValue; got != want {
				t.Errorf("IsPeer() = %v, want %v", got, want)
			}
			var out bytes.Buffer
			err := proc.Announce(&out)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Announce = %v, want %v", err, tt.wantErr)
			}
			want := ""
			if tt.wantErr == nil {
				want = fmt.Sprintf("ipcbench-peer/1 pid=%d\n", os.Getpid())
			}
			if out.String() != want {
				t.Fatalf("Announce wrote %q, want %q", out.String(), want)
			}
		})
	}
	if _, _, err := proc.Control(); !errors.Is(err, proc.ErrNotPeer) {
		t.Fatalf("Control in a test process = %v, want ErrNotPeer", err)
	}
}

// TestParentDeath kills a peer's parent and checks that the kernel kills
// the orphaned peer (Pdeathsig) rather than it exiting on its own.
func TestParentDeath(t *testing.T) {
	// Become a subreaper so the orphan is reparented to us and we can see
	// how it died.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a child subreaper: %v", err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	noChildrenAfter(t)
	p := startHelper(t, "spawner", proc.Spec{})
	var m msg
	if err := recvTimeout(t, p, &m); err != nil || m.Op != "child" || m.N <= 0 {
		t.Fatalf("Recv from the spawner = %+v, %v", m, err)
	}
	grandchild := m.N
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.Exited()

	type result struct {
		ws  unix.WaitStatus
		err error
	}
	res := make(chan result, 1)
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var ws unix.WaitStatus
			_, err := unix.Wait4(grandchild, &ws, 0, nil)
			if (errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECHILD)) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // not reparented to us yet
				continue
			}
			res <- result{ws, err}
			return
		}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatalf("wait4(%d): %v", grandchild, r.err)
		}
		if !r.ws.Signaled() || r.ws.Signal() != unix.SIGKILL {
			t.Fatalf("orphaned peer ended with status %#x, want killed by SIGKILL (Pdeathsig)", uint32(r.ws))
		}
	case <-time.After(10 * time.Second):
		unix.Kill(grandchild, unix.SIGKILL)
		t.Fatalf("orphaned peer %d still alive 10s after its parent died", grandchild)
	}
}

// TestSpawningThreadExit starts a peer from a goroutine whose OS thread then
// exits. Pdeathsig is tied to the forking thread (golang/go#27505), so
// without Start's own locked thread the peer would be killed.
func TestSpawningThreadExit(t *testing.T) {
	noChildrenAfter(t)
	got := make(chan *proc.Peer, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		p, err := proc.Start(context.Background(), proc.Spec{Env: []string{"PROC_TEST_MODE=echo"}})
		errc <- err
		got <- p
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	p := <-got
	t.Cleanup(func() { p.Close() })
	time.Sleep(200 * time.Millisecond) // let the thread go
	want := msg{Op: "echo", N: 1}
	if err := p.Send(want); err != nil {
		t.Fatalf("Send after the starting thread exited: %v", err)
	}
	var m msg
	if err := recvTimeout(t, p, &m); err != nil || m != want {
		t.Fatalf("peer did not survive the exit of the starting thread: %+v, %v", m, err)
	}
}

// allowedCPUs returns Cpus_allowed_list of every thread of pid.
func allowedCPUs(tb testing.TB, pid int) map[string]string {
	tb.Helper()
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				out[f] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

func TestCPUs(t *testing.T) {
	noChildrenAfter(t)
	before := allowedCPUs(t, os.Getpid())
	p := startHelper(t, "echo", proc.Spec{CPUs: []int{0}})
	threads := allowedCPUs(t, p.PID())
	if len(threads) == 0 {
		t.Fatal("no threads found for the peer")
	}
	for f, cpus := range threads {
		if cpus != "0" {
			t.Errorf("%s: Cpus_allowed_list %q, want \"0\"", f, cpus)
		}
	}
	for f, cpus := range allowedCPUs(t, os.Getpid()) {
		if want, ok := before[f]; ok && cpus != want {
			t.Errorf("this process's %s: Cpus_allowed_list %q after Start, was %q", f, cpus, want)
		}
	}
}

// TestAttach checks that what Spec.Attach adds to the command (files, a
// variable) reaches the peer.
func TestAttach(t *testing.T) {
	noChildrenAfter(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	defer w2.Close()
	attach := func(cmd *exec.Cmd) error {
		cmd.ExtraFiles = append(cmd.ExtraFiles, r, r2)
		cmd.Env = append(cmd.Env, "IPCBENCH_TEST_FILES=2")
		return nil
	}
	p := startHelper(t, "files", proc.Spec{Attach: attach})
	if _, err := w.WriteString("through fd 3"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var m msg
	if err := recvTimeout(t, p, &m); err != nil {
		t.Fatal(err)
	}
	if want := (msg{Op: "files", N: 2, Text: "through fd 3"}); m != want {
		t.Fatalf("peer saw %+v, want %+v", m, want)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStartFromPeer: a process started as a peer (the cookie in its
// environment, as in the copy of a program that did not call
// peer.RunIfPeer first) starts no peer: Start fails at once with
// ErrStartFromPeer and ErrPeerStart, before it prepares a command. The
// peer it would start is an echo helper, so that without the guard the
// test ends with one child rather than copies without end.
func TestStartFromPeer(t *testing.T) {
	noChildrenAfter(t)
	if err := proc.CheckStart(); err != nil {
		t.Fatalf("CheckStart in a process that is no peer = %v", err)
	}
	t.Setenv(proc.CookieEnv, proc.CookieValue)
	attached := 0
	spec := proc.Spec{
		Env:    []string{"PROC_TEST_MODE=echo"},
		Attach: func(*exec.Cmd) error { attached++; return nil },
	}
	begin := time.Now()
	p, err := proc.Start(context.Background(), spec)
	took := time.Since(begin)
	if p != nil {
		p.Close()
		t.Fatalf("Start in a peer started peer %d", p.PID())
	}
	if !errors.Is(err, proc.ErrStartFromPeer) || !errors.Is(err, proc.ErrPeerStart) {
		t.Fatalf("Start in a peer = %v; want ErrStartFromPeer and ErrPeerStart", err)
	}
	if !strings.Contains(err.Error(), "call peer.RunIfPeer first in main (or TestMain)") {
		t.Errorf("Start in a peer = %q; want it to say what to do", err)
	}
	if attached != 0 || took > time.Second {
		t.Errorf("Start in a peer prepared %d commands and took %v; want it to refuse at once", attached, took)
	}
	if c := children(t); len(c) > 0 {
		t.Errorf("Start in a peer left children %v", c)
	}
	if cerr := proc.CheckStart(); !errors.Is(cerr, proc.ErrStartFromPeer) || cerr.Error() != err.Error() {
		t.Errorf("CheckStart in a peer = %v; want Start's error %v", cerr, err)
	}
}
