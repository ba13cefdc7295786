// Package connerr shapes connection errors the way package transports
// promises: *net.OpError outermost, with transports.ErrPeerGone attached
// where the kernel said the peer vanished.
package connerr

import (
	"errors"
	"net"
	"syscall"

	"github.com/ipcbench/ipcbench/transports"
)

// PeerGone returns err unchanged unless it reports that the other end
// vanished without an orderly close (EPIPE, ECONNRESET). Then it returns an
// equivalent error for which errors.Is(err, transports.ErrPeerGone) also
// holds, keeping a *net.OpError outermost and the original cause reachable
// (errors.Is(err, syscall.EPIPE) still holds). nil stays nil.
func PeerGone(err error) error {
	if err == nil || !gone(err) || errors.Is(err, transports.ErrPeerGone) {
		return err
	}
	if op, ok := err.(*net.OpError); ok {
		cp := *op
		cp.Err = &goneError{cause: op.Err}
		return &cp
	}
	return &goneError{cause: err}
}

func gone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// goneError is cause marked as a peer-gone condition.
type goneError struct{ cause error }

func (e *goneError) Error() string {
	return e.cause.Error() + " (" + transports.ErrPeerGone.Error() + ")"
}

// Unwrap returns the kernel's cause.
func (e *goneError) Unwrap() error { return e.cause }

// Is makes errors.Is(err, transports.ErrPeerGone) hold.
func (e *goneError) Is(target error) bool { return target == transports.ErrPeerGone }
