package peer

import (
	"math"

	"golang.org/x/sys/unix"
)

// MaxDescriptorsPerConn is the most file descriptors one connection holds
// on a server's side over any transport of this module
// (transports.Memory.Descriptors): a pipe connection with io=raw holds two
// pipe ends and an eventfd for each. Serve's default MaxConns assumes it.
const MaxDescriptorsPerConn = 4

// ReservedDescriptors is the part of the descriptor limit that
// DefaultMaxConns leaves to the server process itself: its standard
// streams, listeners and control socket, the runtime's network poller,
// shm's wake page and doorbell, the summary file and the like.
const ReservedDescriptors = 64

// fallbackDescriptorLimit is taken for the descriptor limit when it cannot
// be read: the usual soft limit.
const fallbackDescriptorLimit = 1024

// DefaultMaxConns is the MaxConns a server whose connections each hold
// descriptors file descriptors (transports.Memory.Descriptors; less than 1
// counts as 1) keeps open at most within this process's descriptor limit:
// the soft RLIMIT_NOFILE (ulimit -n; a Go program raises it to the hard
// limit as it starts) less ReservedDescriptors, divided by twice
// descriptors, and at least 1. Half the room goes to the connections
// served, the other half to those in flight around them: refused at the
// cap (each holds its descriptors until its refusal is written), and, for
// the transports dialed through a rendezvous, being set up (a channel
// holds its descriptors, and more, before Accept returns it), so that a
// server at its cap still has descriptors to accept and refuse with.
func DefaultMaxConns(descriptors int) int {
	limit := fallbackDescriptorLimit
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil {
		limit = int(min(rl.Cur, math.MaxInt32))
	}
	return max((limit-ReservedDescriptors)/(2*max(descriptors, 1)), 1)
}
