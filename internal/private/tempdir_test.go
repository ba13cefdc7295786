package private

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestTempDir: TempDir makes a DirMode directory named with the prefix
// and this process's PID, after removing the directories of that prefix
// left by dead processes, and nothing else: not a live process's, not
// another name, not a symbolic link or what it points to.
func TestTempDir(t *testing.T) {
	base := t.TempDir()
	t.Setenv("TMPDIR", base)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pid36 := func(pid int) string { return strconv.FormatInt(int64(pid), 36) }
	mk := func(name string) string {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "s"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := mk("ipcbench-test-" + pid36(dead.Process.Pid) + "-1")
	live := mk("ipcbench-test-" + pid36(os.Getppid()) + "-2")
	otherPrefix := mk("ipcbench-other-" + pid36(dead.Process.Pid) + "-3")
	notPID := mk("ipcbench-test-zzzzzzzzzz-4")
	target := mk("target")
	link := filepath.Join(base, "ipcbench-test-"+pid36(dead.Process.Pid)+"-5")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	dir, err := TempDir("ipcbench-test-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the dead process's directory %s is still there (%v)", stale, err)
	}
	for _, p := range []string{live, otherPrefix, notPID, filepath.Join(target, "s")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("the symbolic link %s was removed: %v", link, err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != DirMode || filepath.Dir(dir) != base || !strings.HasPrefix(filepath.Base(dir), "ipcbench-test-"+pid36(os.Getpid())+"-") {
		t.Errorf("TempDir = %s (%v, %v); want a %v directory in %s named ipcbench-test-%s-*", dir, st.Mode(), err, DirMode, base, pid36(os.Getpid()))
	}
}
