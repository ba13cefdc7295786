// Package shmring is the "shm-ring" transport: a byte stream in each
// direction through a lock-free single-producer/single-consumer ring in
// shared memory, the fastest way two processes on one machine can move
// bytes through the kernel-free path.
//
// Channels, files, attach, dialing by address (Config.Address: a
// rendezvous socket that hands each dial a fresh channel), liveness, memory
// per connection (one mapping of 4 KiB + 2 × the ring capacity, default
// 1 MiB per direction, as MemoryPerConn of transports.MemoryReporter
// states) and the mapping's header are those of shm-lock (see
// package transports/shmlock), with the header's magic
// "ipcbrng\0" so neither transport attaches to the other's mapping. What
// differs is the ring: there is no lock. The producer owns a free-running
// head counter and the consumer a free-running tail counter, each on its
// own cache line, published with atomic stores and read with atomic loads;
// the bytes between them are the data. The writer publishes a large Write
// in pieces of at most 64 KiB (a quarter of a smaller ring) as it copies
// them, so a reader that polls takes each piece while the writer copies
// the next, and a message as large as the ring streams through it instead
// of the two sides taking turns. Where the two sides do take turns, on
// one core, a Write of half the ring or more fills only 256 KiB of each
// pass over a larger ring and then skips to the start of the ring (the
// skip word in the ring's control block says where), so that what one
// turn touches stays in the core's cache; the writer then sleeps for
// space at once instead of polling for it. A Write of up to 4 KiB whose
// reader took everything skips back to the start once 8 KiB into a pass
// (layout version 5: the writer then counts the reader as past the
// skip), so that an exchange of small messages stays on lines both cores
// still cache instead of going round the whole ring.
//
// # Waiting, and many connections
//
// A goroutine that finds its ring empty (or full) and is the only waiter
// of its process polls the ring itself for the spin budget; that keeps a
// single connection's round trip at the speed of the cache. Otherwise it
// parks on a Go channel, holding no OS thread, and one poller goroutine
// per process polls the rings of all parked goroutines, waking each whose
// ring is ready. While that poller is awake, the other process publishes
// with no system call, however many connections are busy. When the
// longest spin budget of its waiters, once for each waiter up to eight,
// passes with nothing ready (or at once, when the other process last
// waited on this CPU, where polling would only keep it from running), the
// poller announces that it sleeps in a one-page mapping its process shares
// with every peer (the wake page) and parks on an eventfd (the doorbell)
// through the runtime's network poller; the first peer that publishes on any connection then
// clears the announcement and rings once, for the whole batch. Wake page
// and doorbell travel with the hello and its answer when a connection is
// set up. How long a side polls is chosen per run with the wait option,
// and named in the results:
//
//	wait=adaptive  (the default) poll for spin_ns nanoseconds (default
//	               20000), then sleep; after 4 polls in a row that ran
//	               out (the other side shares the core, or is slow),
//	               sleep at once for a run of waits that doubles with
//	               every failed probe
//	wait=spin      poll, calling sched_yield every 4096 polls, never sleep
//	               while the connection is busy (after 100 ms without
//	               progress a waiter sleeps like futex)
//	wait=futex     sleep at once (the poller makes one pass, then
//	               sleeps); the name is historical: the sleep is a
//	               doorbell read
//
// No wake-up is lost: a waiter announces itself and then looks at the ring
// again before it sleeps, and a writer publishes its bytes and then looks
// for an announcement, with a full barrier on each side between the two,
// so either the waiter sees the bytes or the writer sees the waiter and
// wakes it. Options: wait, spin_ns, zerocopy (on, the default, or off:
// whether connections offer transports.PeekReader, so that the stream
// workload's sink checks the bytes in the ring instead of copying them
// out first), and mapping (as for shm-lock).
// Connections implement transports.CloseWriter and
// transports.OptionReporter (ring_bytes, mapping, lock=none, wait,
// spin_ns, zerocopy).
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
	// OptionZeroCopy: "on" (the default) or "off"; see transports.PeekReader.
	OptionZeroCopy = shm.OptionZeroCopy
	WaitSpin       = shm.WaitSpin
	WaitAdaptive   = shm.WaitAdaptive
	WaitFutex      = shm.WaitFutex
)

// ErrBadCommit is wrapped by the error of a ZeroCopy Commit or Release
// (and a transports.PeekReader Release) given more bytes than the region
// Reserve or Peek lent: errors.Is(err, ErrBadCommit). Nothing is published
// or consumed then.
var ErrBadCommit = shm.ErrBadCommit

// New returns the shm-ring transport.
func New() transports.Transport { return shm.New(shm.Ring) }

// ZeroCopy is implemented by shm-ring connections (find it with a type
// assertion on the net.Conn that Dial or Accept returned): it lends the
// ring's own memory instead of copying through a caller's buffer.
//
// Reserve(n) returns the next free region of the outgoing ring, at most n
// bytes (n <= 0: as much as is free) and contiguous, so it may be shorter
// than n at the ring's wrap; it waits like Write until a byte is free.
// Commit(k) publishes the first k bytes of it. Peek returns the waiting
// bytes of the incoming ring (contiguous, so possibly not all of them at
// the wrap), waiting like Read; Release(k) consumes the first k of them.
// A region is valid until its Commit or Release, or Close; writing to a
// peeked region or keeping one past Release is a bug. Reserve/Commit must
// not run concurrently with Write, nor Peek/Release with Read. Errors are
// those of Write and Read, plus ErrBadCommit (wrapped) for a Commit or
// Release beyond the lent region. Its gain over Read/Write is measured by
// `go test -run '^$' -bench RingStream ./transports/internal/shm/`.
type ZeroCopy interface {
	Reserve(n int) ([]byte, error)
	Commit(n int) error
	Peek() ([]byte, error)
	Release(n int) error
}
