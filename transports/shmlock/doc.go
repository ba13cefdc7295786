// Package shmlock implements the "shm-lock" transport: a byte stream in each
// direction through a ring in shared memory, guarded by a cross-process
// futex mutex that lives in the mapping, with futex waits for "data ready"
// and "space free".
//
// # Channels, files and attach
//
// Listen prepares Config.ConnCount() channels before the peer starts. A
// channel is one shared mapping plus one liveness socket pair
// (AF_UNIX, SOCK_STREAM). Endpoint().Files holds, for channel i:
//
//	Files[2*i]   the mapping: a sealed memfd named "ipcbench-shm", or, when
//	             memfd is unavailable or Options["mapping"] is "file" (never
//	             with Config.Address: see "By address"), a 0600 file
//	             created in /dev/shm with O_EXCL|O_NOFOLLOW and unlinked at
//	             once, so it has no name and nothing is left on the file
//	             system even after a crash
//	Files[2*i+1] the peer's end of the liveness socket pair
//
// The memfd is sealed (F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL) so that
// neither end can shrink it under the other's mapping, which would turn
// accesses into SIGBUS; Dial refuses a memfd without those seals. A file
// cannot be sealed: with Options["mapping"] = "file" that protection rests
// on the peer not truncating the file it was handed, which is why only a
// listener whose channels a child inherits (no Config.Address) takes it.
//
// Dial(ctx, ep) maps Files[2*ep.Index] (the mapping survives closing the
// descriptor), validates the header, moves the channel from "listening" to
// "attached", duplicates Files[2*ep.Index+1] for itself and writes the
// one-byte hello on it, with its process's wake page and doorbell attached
// (SCM_RIGHTS; shm-ring's poller uses them, see package shmring), then
// waits for the listener's answer, the same with the listener's; it then
// closes the two files of ep.Files (see transports.Transport.Dial), which
// stay the caller's when it fails. Accept returns channels in the order
// their hellos arrive and then closes the listener's copies of that
// channel's two peer files, so that from then on the only holder of the
// peer's liveness end is the peer's connection.
//
// # By address
//
// With Config.Address set, the listener also listens on a rendezvous: a
// Unix socket (SOCK_SEQPACKET) at that path, whose directory must be the
// user's own and mode 0700 (made so when missing; a group- or
// world-accessible, foreign-owned or symlinked one, a path too long for
// sun_path, or one where something other than a stale socket is, is
// refused with an error wrapping transports.ErrBadEndpoint). Any process
// of the same user
// then dials Endpoint{Transport: Name, Address: path} (no Files) as often
// as it likes: for each dial the listener makes a fresh channel (mapping
// and liveness pair) and passes the channel's two peer files over the
// socket with SCM_RIGHTS; the dialer attaches to it as above, and the
// bytes flow through the shared memory. Every channel of a listener by
// address is a sealed memfd, with no fallback to a file (a dial fails
// when memfd_create does), and Listen refuses Options["mapping"] = "file"
// with an error wrapping transports.ErrBadOption before it makes
// anything: any process of the user may dial and receives the mapping's
// descriptor, and one that shrank an unsealable file would crash the
// listening process with SIGBUS at its next access to the mapping.
// The other way round, Dial refuses, with an error wrapping
// transports.ErrBadEndpoint and before it maps anything, a channel
// fetched from a rendezvous whose mapping is not a memfd sealed against
// shrinking (a file, whatever its header says): a process posing as a
// listener at the address could otherwise shrink it and crash the dialer.
// SO_PEERCRED refuses other users on both sides; Close removes the
// socket; a socket left by a killed listener is removed by the next Listen
// on the path. In this mode only
// Config.Conns channels (not ConnCount: zero means none) are prepared for
// inheritance. A dial to a missing address fails at once with an error
// wrapping transports.ErrBadEndpoint and os.ErrNotExist, one to a stale
// address (nobody listens) with one wrapping transports.ErrPeerGone. A
// dial waits for its channel at most 10 seconds
// (rendezvous.AttachTimeout), or until its context's deadline when that
// is sooner: a listener that is stopped or hung fails it with an error
// wrapping os.ErrDeadlineExceeded (context.DeadlineExceeded for the
// context's deadline).
//
// # Memory per connection
//
// One mapping of 4 KiB + 2 × the ring capacity (Config.BufferSize rounded
// up to a power of two in [4 KiB, 1 GiB], or [4 KiB, 512 MiB] on 32-bit
// platforms; default 1 MiB: 2 MiB + 4 KiB per connection), shared by both
// processes and counted once; pages are only backed once touched, so a
// connection that moves little uses little.
// Per side: one goroutine (liveness), two descriptors (its end of the
// liveness socket pair, and the peer process's doorbell) and a 4 KiB
// mapping of the peer process's wake page (one physical page per process,
// however many connections map it). Per process, once: the wake page and
// the doorbell eventfd, and shm-ring's poller goroutine while a
// connection waits. 64 connections of the default size: 128 MiB + 256 KiB
// of mappings, 128 descriptors per side.
//
// MemoryPerConn (transports.MemoryReporter) states the same for a Config:
// SharedBytes, the mapping plus the 4 KiB wake page mapping each side
// holds (2 MiB + 8 KiB by default), no kernel buffer, one goroutine and
// two descriptors per side, and at most 32 KiB of Go heap and stack per
// side (4-8 KiB measured). The conformance suite holds 64 connections
// with full rings and checks every figure.
//
// # Liveness
//
// Each connection has one goroutine blocked (in the runtime poller, not in a
// thread) reading its end of the liveness socket. The peer never writes on
// it after the set-up, so the read returns only when every copy of the other
// end is closed: the peer closed the connection or its process died (the
// kernel closes a killed process's descriptors). The goroutine then marks the
// peer gone and wakes every local waiter. An orderly Close first sets
// the "closed" flags in the header (below), so a reader that finds the ring
// empty reports io.EOF after the last byte when the writer closed, and
// transports.ErrPeerGone only when the peer vanished without closing.
//
// # Mapping layout (version 6)
//
// All integers are in the machine's native byte order (both ends run on one
// machine) and are read and written with sync/atomic. The mapping is
// headerSize + 2*ringCap bytes:
//
//	offset           size     contents
//	0x0000           4096     header (below); unused bytes are zero
//	0x1000           ringCap  ring 0 data: bytes written by the listening side
//	0x1000+ringCap   ringCap  ring 1 data: bytes written by the dialing side
//
// The header starts with one cache line (64 bytes) that is written once by
// the listener before the peer can see the mapping, then two ring control
// blocks of three cache lines each:
//
//	0x000 u64 magic       0x006d687362637069 ("ipcbshm\0" little-endian)
//	0x008 u32 version     6
//	0x00C u32 headerSize  4096: offset of ring 0's data
//	0x010 u64 ringCap     bytes per ring; a power of two, 4 KiB .. 1 GiB (512 MiB on 32-bit)
//	0x018 u64 mapSize     headerSize + 2*ringCap; equals the file size
//	0x020 u32 state       0 initialising, 1 listening, 2 attached
//	0x024 u32 flags       1 = mapping is a memfd, 2 = mapping is a file
//	0x040 ring control 0  (ring 0: listener writes, dialer reads)
//	0x100 ring control 1  (ring 1: dialer writes, listener reads)
//
// A ring control block, relative to its start:
//
//	line 0, touched by both ends:
//	+0x00 u32 lock           futex mutex: 0 free, 1 held, 2 held with waiters
//	+0x04 u32 readerClosed   1 once the reader closed (writes get EPIPE)
//	+0x08 u64 used           bytes in the ring, 0 <= used <= ringCap
//	+0x10 u32 laps           shm-lock: times the writer moved both indices
//	                         back to 0 (below); shm-ring leaves it 0
//	line 1, written by the producer:
//	+0x40 u64 wpos           next byte the writer fills, 0 <= wpos < ringCap
//	+0x48 u32 dataSeq        futex word: bumped after every commit of data
//	+0x4C u32 writerClosed   1 once the writer closed (no more data)
//	+0x50 u32 readerWaiting  1 while the reader sleeps (or is about to) on dataSeq
//	+0x54 u32 writerCPU      the CPU + 1 the writing side last waited on
//	                         (an adaptive wait of either kind, or a waiter of
//	                         either kind parked with its process's poller): a
//	                         hint to the other side's waits; 0 unknown
//	+0x58 u64 skip           shm-ring only: the head at which the writer last
//	                         ended a lap early, the bytes from there to the
//	                         next multiple of ringCap being no data (see
//	                         package shmring); shm-lock leaves it 0
//	line 2, written by the consumer:
//	+0x80 u64 rpos           next byte the reader takes, 0 <= rpos < ringCap
//	+0x88 u32 spaceSeq       futex word: bumped after every commit of a read
//	+0x90 u32 writerWaiting  1 while the writer sleeps (or is about to) on spaceSeq
//
// Invariant, checked under the lock on every operation:
// wpos < ringCap, rpos < ringCap, used <= ringCap and
// (rpos + used) mod ringCap == wpos; besides, the side that owns an index
// (the writer wpos, the reader rpos) finds it where it left it, except
// that the reader finds rpos at 0, and only there, after laps changed. A
// violation
// is reported as an error wrapping transports.ErrCorrupt; since ringCap is
// taken from the validated header once, at attach, and never re-read, no
// value in the mapping can make an access fall outside it.
//
// # Lock and waits
//
// The lock is the three-state mutex of Ulrich Drepper's "Futexes Are
// Tricky" (mutex #3), on shared (not FUTEX_PRIVATE) futexes, with a short
// bounded spin (lockSpin loads) before the first sleep. It guards wpos,
// rpos, used, laps and the waiting flags; each operation takes it twice, once to
// reserve (read the indices) and once to commit (advance them), and copies
// the bytes in between without it: the writer only fills free space and the
// reader only drains used space, and each side serialises its own calls, so
// the two copies never overlap.
//
// A Write of up to 4 KiB that finds the ring empty (the reader took
// everything) and its index at least 8 KiB into the ring moves wpos and
// rpos back to 0 under the lock and counts it in laps, before it copies.
// An exchange of small messages then keeps to the ring's first pages,
// which both processes have mapped and both cores cache, instead of going
// round the whole ring: with 64 connections of the default 1 MiB, each
// process otherwise faults in 128 MiB of pages during the first lap, and
// short runs measure little else.
//
// A reader that finds the ring empty unlocks and waits as the wait option
// (Options["wait"], the same as shm-ring's) says. With "adaptive", the
// default, a reader alone in its process first polls "used" for the spin
// budget (Options["spin_ns"], default 20 µs), once per Read however long
// it then sleeps, and skips that polling for a while (at most 5 ms) when
// it keeps running out, a while that ends at once when the two sides,
// seen on one CPU during it, are seen on two; with "spin" it polls for as
// long as 100 ms, yielding; with "futex" it does not poll at all, which is
// the plain baseline a process-shared mutex and condition variable give.
// It then sets readerWaiting, having read dataSeq before taking the lock,
// and sleeps with FUTEX_WAIT on dataSeq; a writer's commit bumps dataSeq
// and, if readerWaiting was set, clears it and wakes. Space works the
// same way with writerWaiting and spaceSeq. Local events (Close, a
// deadline change, the peer's death) bump the local side's sequence words
// and wake them too, so a sleeper re-checks its state at once. Every
// futex sleep also has a timeout: the time left to the deadline, at most
// dataWaitSlice (lockWaitSlice for the lock), after which the state is
// checked again. Without the polling, a lone waiter pays a sleeping
// core's wake-up on every message, and on the 2-vCPU VM of the
// repository's results a one-connection exchange was slower than a
// pipe's (0.67–0.82× in results/shm-lock-hotlap-after.jsonl).
//
// That polling and futex sleep are for the one waiter of a process that
// waits alone; every other waiter of the process unlocks and parks its
// goroutine, and the process's poller (shared with shm-ring, see package
// shmring) looks at "used" of every parked ring, polling for the same
// budget once for each parked waiter, up to eight (none with "futex"),
// and then sleeping on its doorbell, which a
// commit rings, once per batch, when it finds the poller's process
// announced asleep in its wake page. So many waiting connections hold no
// OS thread each.
//
// A peer killed while it held the lock never releases it: a waiter for the
// lock then returns transports.ErrPeerGone once the liveness socket reports
// the death.
package shmlock
