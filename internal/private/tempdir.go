package private

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// TempDir makes a fresh directory of DirMode in os.TempDir(), named prefix
// + this process's PID in base 36 + "-" + random, and returns its path.
// First it removes the directories of that pattern that this user owns and
// whose creating process no longer exists (RemoveStale): a process killed
// before it could remove its own directory leaves it to the next one.
func TempDir(prefix string) (string, error) {
	base := os.TempDir()
	RemoveStale(base, prefix)
	dir, err := os.MkdirTemp(base, prefix+strconv.FormatInt(int64(os.Getpid()), 36)+"-")
	if err != nil {
		return "", err
	}
	// MkdirTemp makes it 0700 already; DirMode says what it must be.
	if err := os.Chmod(dir, DirMode); err != nil {
		os.Remove(dir)
		return "", err
	}
	return dir, nil
}

// RemoveStale removes, from base, every directory named prefix+PID-... (PID
// in base 36, as TempDir names them) that this user owns and whose
// creating process no longer exists, with its contents. Only directories
// (never symbolic links) of that pattern are touched; errors are ignored,
// as the sweep is a courtesy and a directory it cannot remove harms
// nobody.
func RemoveStale(base, prefix string) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	uid := os.Geteuid()
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid64, err := strconv.ParseInt(pidText, 36, 32)
		pid := int(pid64)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if Alive(pid) {
			continue
		}
		path := filepath.Join(base, e.Name())
		st, err := os.Lstat(path)
		if err != nil || !st.IsDir() || Owner(st.Sys()) != uid {
			continue
		}
		os.RemoveAll(path)
	}
}

// Owner returns the owner's uid of a file whose os.FileInfo.Sys() is sys,
// or -1 when sys does not say.
func Owner(sys any) int {
	if st, ok := sys.(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// Alive reports whether process pid exists and has not exited. A zombie
// has exited: a killed process whose new parent does not reap it (as in
// containers whose init does not) stays one indefinitely.
func Alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name, which is in parentheses and may
	// itself hold any character.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
