package unix_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// envDialAs makes the test binary a helper that dials the socket path in
// the variable's value and reports the outcome on stdout (see helper).
const envDialAs = "IPCBENCH_UNIX_TEST_DIAL"

// helper is the TestMain hook: in a process started by dialAs it dials,
// prints "connected" or the error, and exits.
func helper() (int, bool) {
	path := os.Getenv(envDialAs)
	if path == "" {
		return 0, false
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		fmt.Println("dial:", err)
		return 0, true
	}
	defer c.Close()
	fmt.Println("connected")
	// Wait for the listener's verdict: EOF when it refused us.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err = c.Read(b[:])
	fmt.Println("read:", err)
	return 0, true
}

// dialAs runs exe as the helper, as uid/gid 65534 (nobody), against path and
// returns its output.
func dialAs(t *testing.T, exe, path string) string {
	t.Helper()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envDialAs+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	return string(out)
}

// TestForeignUserRefused dials the socket as another user. The private
// directory keeps that user out; with it opened up on purpose, Accept's
// SO_PEERCRED check refuses the connection. It needs root to switch users.
func TestForeignUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process as another user")
	}
	// The test binary's directory is reachable by everyone, so the
	// private socket directory is the only wall in layer 1.
	exe := transporttest.WorldExecutable(t)
	base := filepath.Dir(exe)
	t.Setenv("TMPDIR", base)
	ln, err := unix.New().Listen(context.Background(), transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	path := ln.Endpoint().Address

	// Layer 1: the 0700 directory.
	if out := dialAs(t, exe, path); !strings.Contains(out, "permission denied") {
		t.Fatalf("another user reached the socket through its private directory: %s", out)
	}

	// Layer 2: the directory and socket opened to everyone by mistake.
	if err := os.Chmod(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	out := dialAs(t, exe, path)
	var a accepted
	select {
	case a = <-ch:
	case <-time.After(10 * time.Second):
		ln.Close() // ends the Accept
		t.Fatalf("no connection from the other user reached Accept; helper said: %s", out)
	}
	if a.err == nil {
		a.c.Close()
		t.Fatalf("Accept took a connection from uid 65534; helper said: %s", out)
	}
	if !errors.Is(a.err, unix.ErrForeignPeer) || !strings.Contains(a.err.Error(), "uid 65534") {
		t.Fatalf("Accept: %v; want an error wrapping ErrForeignPeer naming the uid", a.err)
	}
	if !strings.Contains(out, "read: EOF") {
		t.Fatalf("the refused peer did not see its connection closed: %s", out)
	}
	t.Logf("refused: %v", a.err)

	// The same user still gets in.
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	c, err := unix.New().Dial(context.Background(), ln.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a := <-ch; a.err != nil {
		t.Fatalf("Accept of our own connection: %v", a.err)
	} else {
		a.c.Close()
	}
}

// TestStaleDirectories checks that Listen removes the socket directories
// of dead processes and nothing else: not a live process's, not another
// name, not a symlink or what it points to.
func TestStaleDirectories(t *testing.T) {
	base := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.Process.Pid
	mk := func(name string) string {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "sock"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := mk("ipcbench-unix-" + strconv.FormatInt(int64(deadPID), 36) + "-123")
	live := mk("ipcbench-unix-" + strconv.FormatInt(int64(os.Getppid()), 36) + "-456")
	other := mk("something-else")
	target := mk("target")
	link := filepath.Join(base, "ipcbench-unix-"+strconv.FormatInt(int64(deadPID), 36)+"-789")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", base)
	ln, err := unix.New().Listen(context.Background(), transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the dead process's directory %s is still there (%v)", stale, err)
	}
	for _, p := range []string{live, other, filepath.Join(target, "sock")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("the symlink %s was removed: %v", link, err)
	}
	if want := "ipcbench-unix-" + strconv.FormatInt(int64(os.Getpid()), 36) + "-"; !strings.HasPrefix(filepath.Base(filepath.Dir(ln.Endpoint().Address)), want) {
		t.Errorf("socket %s: directory not named %s*", ln.Endpoint().Address, want)
	}
}
