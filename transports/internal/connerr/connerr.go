// Package connerr shapes connection errors the way package transports
// promises: *net.OpError outermost, with transports.ErrPeerGone attached
// where the kernel said the peer vanished, and a dial's errors marked with
// the sentinels transports.Transport.Dial names.
package connerr

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"

	"github.com/ipcbench/ipcbench/transports"
)

// PeerGone returns err unchanged unless it reports that the other end
// vanished without an orderly close (EPIPE, ECONNRESET). Then it returns an
// equivalent error for which errors.Is(err, transports.ErrPeerGone) also
// holds, keeping a *net.OpError outermost and the original cause reachable
// (errors.Is(err, syscall.EPIPE) still holds). nil stays nil.
func PeerGone(err error) error {
	if err == nil || !gone(err) {
		return err
	}
	return mark(err, transports.ErrPeerGone, "")
}

func gone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// Dial returns err, the error of a connect to a TCP address or a socket
// path, marked as transports.Transport.Dial promises for an address
// nobody listens on: ECONNREFUSED (nobody listens there, or no more) also
// wraps transports.ErrPeerGone, ENOENT (no socket file at the path, which
// is fs.ErrNotExist) also transports.ErrBadEndpoint, and EPROTOTYPE (a
// socket of another type is bound at the path: a pipe or shm-*
// rendezvous, or another program's) also transports.ErrBadEndpoint. Other
// errors are returned unchanged. A *net.OpError stays outermost and the
// errno reachable with errors.Is; nil stays nil.
func Dial(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return mark(err, transports.ErrPeerGone, "nobody listens there")
	case errors.Is(err, syscall.ENOENT):
		return mark(err, transports.ErrBadEndpoint, "no socket there")
	case errors.Is(err, syscall.EPROTOTYPE):
		return mark(err, transports.ErrBadEndpoint, "a socket of another kind is bound there (a pipe or shm-* rendezvous, or another program's)")
	}
	return err
}

// DialPath is Dial for the error of a connect to the Unix socket at path.
// The kernel refuses a connect to a file that is not a socket with
// ECONNREFUSED, as it does one to a socket nobody listens on; DialPath
// tells them apart, and reports such a file with an error wrapping
// transports.ErrBadEndpoint alone (not ECONNREFUSED or ErrPeerGone: no
// listener will ever be there), saying "not a socket", in place of the
// *net.OpError's cause.
func DialPath(path string, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		// Stat, not Lstat: connect followed any symbolic link.
		if st, serr := os.Stat(path); serr == nil && st.Mode()&fs.ModeSocket == 0 {
			cause := fmt.Errorf("not a socket (mode %v): %w", st.Mode(), transports.ErrBadEndpoint)
			if op, ok := err.(*net.OpError); ok {
				cp := *op
				cp.Err = cause
				return &cp
			}
			return fmt.Errorf("%s: %w", path, cause)
		}
	}
	return Dial(err)
}

// mark returns err marked with sentinel (see marked), keeping a
// *net.OpError outermost; an error that already wraps sentinel is
// returned unchanged.
func mark(err, sentinel error, why string) error {
	if errors.Is(err, sentinel) {
		return err
	}
	if op, ok := err.(*net.OpError); ok {
		cp := *op
		cp.Err = &marked{cause: op.Err, sentinel: sentinel, why: why}
		return &cp
	}
	return &marked{cause: err, sentinel: sentinel, why: why}
}

// marked is cause marked as a condition of package transports (sentinel),
// with why, when not empty, saying what it means.
type marked struct {
	cause, sentinel error
	why             string
}

func (e *marked) Error() string {
	if e.why != "" {
		return e.cause.Error() + " (" + e.why + ": " + e.sentinel.Error() + ")"
	}
	return e.cause.Error() + " (" + e.sentinel.Error() + ")"
}

// Unwrap returns the kernel's cause.
func (e *marked) Unwrap() error { return e.cause }

// Is makes errors.Is(err, sentinel) hold.
func (e *marked) Is(target error) bool { return target == e.sentinel }
