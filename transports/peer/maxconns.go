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
// limit as it starts) less ReservedDescriptors, divided by descriptors,
// and at least 1. The whole room goes to the connections served, so that
// a client (ipcbench run's fanin of up to 1,024 connections among them)
// gets every connection the limit allows: connections waiting in a
// socket's accept queue hold no descriptor of this process. Connections
// in flight around the cap (refused, each holding its descriptor until
// its refusal is written; for the transports dialed through a rendezvous,
// channels fetched but not yet attached) draw on ReservedDescriptors, and
// beyond it make Accept fail for a while, as it does without a cap.
func DefaultMaxConns(descriptors int) int {
	limit := fallbackDescriptorLimit
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil {
		limit = int(min(rl.Cur, math.MaxInt32))
	}
	return max((limit-ReservedDescriptors)/max(descriptors, 1), 1)
}
