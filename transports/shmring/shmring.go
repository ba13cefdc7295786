// Package shmring is the "shm-ring" transport: a byte stream in each
// direction through a lock-free single-producer/single-consumer ring in
// shared memory, the fastest way two processes on one machine can move
// bytes through the kernel-free path.
//
// Channels, files, attach, liveness and the mapping's header are those of
// shm-lock (see package transports/shmlock), with the header's magic
// "ipcbrng\0" so neither transport attaches to the other's mapping. What
// differs is the ring: there is no lock. The producer owns a free-running
// head counter and the consumer a free-running tail counter, each on its
// own cache line, published with atomic stores and read with atomic loads;
// the bytes between them are the data. How a side waits for the other is
// chosen per run with the wait option, and named in the results:
//
//	wait=adaptive  (the default) poll for spin_ns nanoseconds (default
//	               20000), then announce and sleep on a futex
//	wait=spin      poll, calling sched_yield every 256 polls, never sleep
//	               in the kernel while the connection is busy (after 100 ms
//	               without progress a waiter sleeps like futex)
//	wait=futex     announce and sleep at once
//
// A waiter about to sleep sets a "sleeping" flag in the mapping and
// re-checks the ring before it sleeps; the other side issues FUTEX_WAKE
// only when it finds the flag set, so the fast path makes no system call.
// transports/internal/shm/ring_linux.go gives the argument that no wake-up
// is lost. Options: wait, spin_ns, and mapping (as for shm-lock).
// Connections implement transports.CloseWriter and
// transports.OptionReporter (ring_bytes, mapping, lock=none, wait,
// spin_ns).
package shmring

import (
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/shm"
)

// Name is the transport's stable, user-facing name.
const Name = "shm-ring"

// Option keys and the wait strategies (values of OptionWait).
const (
	OptionWait    = shm.OptionWait
	OptionSpinNS  = shm.OptionSpinNS
	OptionMapping = shm.OptionMapping
	WaitSpin      = shm.WaitSpin
	WaitAdaptive  = shm.WaitAdaptive
	WaitFutex     = shm.WaitFutex
)

// New returns the shm-ring transport.
func New() transports.Transport { return shm.New(shm.Ring) }
