package peer

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// SecretSize is the length in bytes of a Secret.
const SecretSize = 32

// AdmitTimeout is how long Admit waits by default for a connection to prove
// itself: the peer writes its secret as soon as its dial returns, so only a
// stranger (or a peer stopped mid-dial) takes longer.
const AdmitTimeout = 5 * time.Second

// ErrStranger is wrapped by the error Admit returns for a connection that
// did not prove itself: it sent other bytes than the secret, too few of
// them before EOF, or nothing within the timeout.
var ErrStranger = errors.New("connection did not prove it comes from the peer")

// Secret is a per-peer token that proves a connection comes from the peer:
// the peer writes it as the first bytes of every connection it dials
// (Job.Secret, so it travels over the control channel, never on a command
// line), and the listening side admits only connections that start with
// it (Admit, AcceptProven, Guard). A TCP listener, even on 127.0.0.1, can
// be reached by every process of every user on the machine; without the
// proof a process that connects before the peer would be measured in its
// place.
type Secret []byte

// NewSecret returns a fresh random Secret.
func NewSecret() (Secret, error) {
	s := make(Secret, SecretSize)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("peer: making a secret: %w", err)
	}
	return s, nil
}

// Prove writes s on c: the peer's side, first thing on every connection.
// An empty s writes nothing.
func Prove(c net.Conn, s Secret) error {
	if len(s) == 0 {
		return nil
	}
	if _, err := c.Write(s); err != nil {
		return fmt.Errorf("proving the connection: %w", err)
	}
	return nil
}

// Admit reads the first len(s) bytes of c, within timeout, and returns nil
// when they are s; otherwise an error wrapping ErrStranger. c's read
// deadline is cleared again when it is admitted. The listening side calls
// it on every connection before using it; the caller closes a refused
// connection.
func Admit(c net.Conn, s Secret, timeout time.Duration) error {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("admitting a connection: %w", err)
	}
	got := make([]byte, len(s))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("%w: reading its first %d bytes: %w", ErrStranger, len(s), err)
	}
	if subtle.ConstantTimeCompare(got, s) != 1 {
		return fmt.Errorf("%w: it sent other bytes than the secret", ErrStranger)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("admitting a connection: %w", err)
	}
	return nil
}

// AcceptProven accepts connections from ln until one proves itself with s
// (Admit, within timeout) and returns it; every other connection is closed
// and reported to refused, when that is not nil. Connections are taken one
// at a time, in arrival order (the order the peer dialed them), so a
// stranger that sends nothing delays the next connection by up to timeout.
// An error of ln.Accept ends it.
func AcceptProven(ln net.Listener, s Secret, timeout time.Duration, refused func(error)) (net.Conn, error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil, err
		}
		err = Admit(c, s, timeout)
		if err == nil {
			return c, nil
		}
		c.Close()
		if refused != nil {
			refused(fmt.Errorf("from %v: %w", c.RemoteAddr(), err))
		}
	}
}

// Guard returns ln with an Accept that returns only connections that prove
// themselves with s (AcceptProven); the other methods are ln's.
func Guard(ln net.Listener, s Secret, timeout time.Duration, refused func(error)) net.Listener {
	return &guard{Listener: ln, secret: s, timeout: timeout, refused: refused}
}

type guard struct {
	net.Listener
	secret  Secret
	timeout time.Duration
	refused func(error)
}

// Accept returns the next connection that proves itself.
func (g *guard) Accept() (net.Conn, error) {
	return AcceptProven(g.Listener, g.secret, g.timeout, g.refused)
}
