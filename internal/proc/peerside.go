package proc

import (
	"fmt"
	"io"
	"os"
	"strconv"
)

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

// InheritedFiles returns how many files the peer inherited from Start as
// descriptors 3, 4, ... (FilesEnv); 0 when it is unset or malformed. A peer
// must not touch descriptors beyond them: they belong to its own runtime.
func InheritedFiles() int {
	n, err := strconv.Atoi(os.Getenv(FilesEnv))
	if err != nil || n < 0 {
		return 0
	}
	return n
}
