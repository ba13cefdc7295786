package unix

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// dirPrefix starts the name of every private socket directory; the
// creating process's PID follows (in base 36, to keep socket paths short),
// so a later Listen can tell a directory
// whose owner is gone (killed before its Close ran) from a live one.
const dirPrefix = "ipcbench-unix-"

// ErrForeignPeer is wrapped by the error Accept returns for a connection
// from a process of another user.
var ErrForeignPeer = errors.New("connection from another user refused")

// makeDir removes the stale socket directories of dead processes in base,
// then makes a fresh private one.
func makeDir(base string) (string, error) {
	removeStale(base)
	return os.MkdirTemp(base, dirPrefix+strconv.FormatInt(int64(os.Getpid()), 36)+"-")
}

// removeStale removes, from base, every socket directory that this user
// owns and whose creating process no longer exists. Only directories
// (never symlinks) of our name pattern are touched; errors are ignored, as
// the sweep is a courtesy and a directory it cannot remove harms nobody.
func removeStale(base string) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	uid := uint32(os.Geteuid())
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), dirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid64, err := strconv.ParseInt(pidText, 36, 32)
		pid := int(pid64)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if alive(pid) {
			continue
		}
		path := filepath.Join(base, e.Name())
		st, err := os.Lstat(path)
		if err != nil || !st.IsDir() {
			continue
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Uid != uid {
			continue
		}
		os.RemoveAll(path)
	}
}

// alive reports whether process pid exists and has not exited. A zombie
// has exited: a killed process whose new parent does not reap it (as in
// containers whose init does not) stays one indefinitely.
func alive(pid int) bool {
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

// checkPeer refuses a connection whose peer process runs as another user
// than this one (SO_PEERCRED). The 0700 directory already keeps other
// users from reaching the socket; this is the second wall, for a socket
// made reachable on purpose or by a mistake.
func checkPeer(c *net.UnixConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("%s: accept: %w", Name, err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("%s: accept: %w", Name, err)
	}
	if cerr != nil {
		return fmt.Errorf("%s: accept: reading the peer's credentials: %w", Name, cerr)
	}
	if want := uint32(os.Geteuid()); cred.Uid != want {
		return fmt.Errorf("%s: accept: %w: peer pid %d runs as uid %d, this process as uid %d",
			Name, ErrForeignPeer, cred.Pid, cred.Uid, want)
	}
	return nil
}
