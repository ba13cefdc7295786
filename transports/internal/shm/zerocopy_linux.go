package shm

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// ErrNotRing is returned by the zero-copy methods of a shm-lock
// connection: only shm-ring's rings can be lent out without a lock.
var ErrNotRing = errors.New("zero-copy access needs an shm-ring connection")

// PeekEnabled reports whether a workload should read this connection in
// place with Peek and Release (transports.PeekReader): an shm-ring
// connection whose variant did not turn it off (zerocopy=off).
func (c *Conn) PeekEnabled() bool { return c.kind == Ring && !c.set.noPeek }

// ErrBadCommit is wrapped when Commit or Release is given more bytes than
// the region Reserve or Peek returned.
var ErrBadCommit = errors.New("commit or release beyond the reserved region")

// Reserve returns the next free region of the outgoing ring, at most n
// bytes long (n <= 0: as much as is free), waiting as Write does until at
// least one byte is free. The region is contiguous, so it is shorter than
// n at the ring's wrap even when more is free. The caller fills it and
// calls Commit; until then nothing is visible to the peer. Reserve and
// Commit must not run concurrently with Write. Errors are Write's.
func (c *Conn) Reserve(n int) ([]byte, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.kind != Ring {
		return nil, c.opError("reserve", ErrNotRing)
	}
	w := &c.tx
	want := w.mask + 1
	if n > 0 {
		want = uint64(n)
	}
	free, err := c.ringSpace(want, false)
	if err != nil {
		return nil, c.opError("reserve", err)
	}
	i := w.pos & w.mask
	m := min(free, w.mask+1-i, want)
	c.reserved = int(m)
	w.prefault(i, m)
	return w.data[i : i+m : i+m], nil
}

// Commit publishes the first n bytes of the region the last Reserve
// returned, waking the peer if it sleeps.
func (c *Conn) Commit(n int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.kind != Ring {
		return c.opError("commit", ErrNotRing)
	}
	if n < 0 || n > c.reserved {
		return c.opError("commit", fmt.Errorf("%w: %d bytes, %d reserved", ErrBadCommit, n, c.reserved))
	}
	if c.closed.Load() {
		return c.opError("commit", net.ErrClosed)
	}
	c.reserved = 0
	c.produced(uint64(n))
	return nil
}

// Peek returns the bytes waiting in the incoming ring, without copying
// them: a contiguous region (so possibly not all that is waiting, at the
// wrap), after waiting as Read does until there is at least one byte. The
// region stays valid, and unchanged, until Release. It returns io.EOF
// after the peer's last byte when the peer closed; other errors are
// Read's. Peek and Release must not run concurrently with Read.
func (c *Conn) Peek() ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.kind != Ring {
		return nil, c.opError("peek", ErrNotRing)
	}
	avail, err := c.ringData(false)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, c.opError("peek", err)
	}
	r := &c.rx
	i := r.pos & r.mask
	m := min(avail, r.mask+1-i)
	c.peeked = int(m)
	r.prefault(i, m)
	return r.data[i : i+m : i+m], nil
}

// Release consumes the first n bytes of the region the last Peek
// returned, freeing their space for the peer.
func (c *Conn) Release(n int) error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.kind != Ring {
		return c.opError("release", ErrNotRing)
	}
	if n < 0 || n > c.peeked {
		return c.opError("release", fmt.Errorf("%w: %d bytes, %d peeked", ErrBadCommit, n, c.peeked))
	}
	if c.closed.Load() {
		return c.opError("release", net.ErrClosed)
	}
	c.peeked -= n
	c.consumed(uint64(n))
	return nil
}
