package testpeer

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// TestMain lets the test binary run as a scripted peer: with Env set it
// acts, then exits 0 (a start).
func TestMain(m *testing.M) {
	if os.Getenv(Env) != "" {
		Act()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startPeer runs this test binary as a peer of the script in dir.
func startPeer(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), Env+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// TestScript plays a script of every action, in order, and then starts
// once more with the script used up.
func TestScript(t *testing.T) {
	dir := t.TempDir()
	if err := Script(dir, Fail, Start, Hang); err != nil {
		t.Fatal(err)
	}
	if err := startPeer(t, dir).Wait(); err == nil {
		t.Error("first start (Fail) exited 0")
	}
	if err := startPeer(t, dir).Wait(); err != nil {
		t.Errorf("second start (Start): %v", err)
	}
	hung := startPeer(t, dir)
	exited := make(chan error, 1)
	go func() { exited <- hung.Wait() }()
	select {
	case err := <-exited:
		t.Errorf("third start (Hang) exited: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if kids := Children(os.Getpid()); !slices.Contains(kids, hung.Process.Pid) {
		t.Errorf("Children(self) = %v, want the hanging peer %d among them", kids, hung.Process.Pid)
	}
	if s, ppid := State(hung.Process.Pid); s == 0 || ppid != os.Getpid() {
		t.Errorf("State(hanging peer) = %q, parent %d; want a live child of %d", s, ppid, os.Getpid())
	}
	hung.Process.Kill()
	<-exited
	if err := startPeer(t, dir).Wait(); err != nil {
		t.Errorf("start after the script: %v", err)
	}
	if s, _ := State(hung.Process.Pid); s != 0 {
		t.Errorf("State of a reaped process = %q, want 0", s)
	}
}
