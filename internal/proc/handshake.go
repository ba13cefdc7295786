// The cookie and the handshake, both sides: the spawning side (Start)
// sets the variables and checks the handshake line with checkHandshake; the
// peer side (IsPeer, Announce, Control) reads them and writes the line with
// HandshakeLine. Nothing else in the module knows the format.

package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// CookieEnv is the environment variable that marks a process as an ipcbench
// peer. Its value must be CookieValue.
const CookieEnv = "IPCBENCH_PEER_COOKIE"

// CookieValue is the fixed value of CookieEnv. It is not a secret: it only
// keeps people from running the peer subcommand by hand.
const CookieValue = "4f1c9a7e-ipcbench-peer-started-by-ipcbench"

// ParentEnv is the environment variable that carries the pid of the process
// that started the peer; the peer checks it against getppid at start.
const ParentEnv = "IPCBENCH_PEER_PARENT"

// HandshakeVersion is the version of the handshake and control protocol.
// The handshake line is "ipcbench-peer/1 pid=<pid>\n".
const HandshakeVersion = 1

// HandshakePrefix starts the handshake line, followed by the version.
const HandshakePrefix = "ipcbench-peer/"

// Sentinel errors of the peer side, tested with errors.Is.
var (
	// ErrNotPeer means the process was not started as a peer (CookieEnv is
	// missing or wrong).
	ErrNotPeer = errors.New("not started as an ipcbench peer")
	// ErrParentGone means the process that started the peer died before the
	// peer came up.
	ErrParentGone = errors.New("peer's parent process is gone")
)

// peerEnv returns the variables Start sets for a peer: the cookie and
// this process's pid.
func peerEnv() []string {
	return []string{CookieEnv + "=" + CookieValue, ParentEnv + "=" + strconv.Itoa(os.Getpid())}
}

// HandshakeLine returns the handshake line of process pid, without the
// newline.
func HandshakeLine(pid int) string {
	return HandshakePrefix + strconv.Itoa(HandshakeVersion) + " pid=" + strconv.Itoa(pid)
}

// checkHandshake verifies that line is the handshake of process pid.
func checkHandshake(line []byte, pid int) error {
	s := string(line)
	rest, ok := strings.CutPrefix(s, HandshakePrefix)
	if !ok {
		return fmt.Errorf("unexpected first line on stdout %s, want the handshake %q", quote(line), HandshakeLine(pid))
	}
	ver, pidStr, ok := strings.Cut(rest, " pid=")
	v, err := strconv.Atoi(ver)
	if !ok || err != nil {
		return fmt.Errorf("malformed handshake %s", quote(line))
	}
	if v != HandshakeVersion {
		return fmt.Errorf("peer speaks handshake version %d, this program version %d (mixed binaries?)", v, HandshakeVersion)
	}
	got, err := strconv.Atoi(pidStr)
	if err != nil || got <= 0 {
		return fmt.Errorf("malformed handshake %s", quote(line))
	}
	if got != pid {
		// A wrapper between us and the peer would defeat Pdeathsig, Kill
		// and CPU accounting, which all target the process we started.
		return fmt.Errorf("handshake from pid %d, but the started process is pid %d (a wrapper in between?)", got, pid)
	}
	return nil
}

// IsPeer reports whether this process was started as a peer: CookieEnv is
// set to CookieValue.
func IsPeer() bool { return os.Getenv(CookieEnv) == CookieValue }

// Announce is the peer side of the start: it checks that this process was
// started as a peer by a parent that is still alive, then writes the
// handshake line to w (the peer's stdout). It fails with an error wrapping
// ErrNotPeer when the cookie is missing or wrong, and ErrParentGone when
// the parent recorded in ParentEnv is no longer this process's parent (it
// died before its death signal could reach us; the caller should exit).
func Announce(w io.Writer) error {
	if !IsPeer() {
		return fmt.Errorf("proc: %w: %s is not set to the expected value", ErrNotPeer, CookieEnv)
	}
	want, err := strconv.Atoi(os.Getenv(ParentEnv))
	if err != nil || want <= 0 {
		return fmt.Errorf("proc: %w: %s is %q, want the parent's pid", ErrNotPeer, ParentEnv, os.Getenv(ParentEnv))
	}
	if got := os.Getppid(); got != want {
		return fmt.Errorf("proc: %w: started by pid %d, parent is now pid %d", ErrParentGone, want, got)
	}
	if _, err := io.WriteString(w, HandshakeLine(os.Getpid())+"\n"); err != nil {
		return fmt.Errorf("proc: writing the handshake: %w", err)
	}
	return nil
}

// Control returns the peer's control channel, its stdin and stdout, after
// writing the handshake on stdout (see Announce, whose errors it returns).
// After it, nothing but control lines may be written to stdout; logs go to
// stderr.
func Control() (io.Reader, io.Writer, error) {
	if err := Announce(os.Stdout); err != nil {
		return nil, nil, err
	}
	return os.Stdin, os.Stdout, nil
}
