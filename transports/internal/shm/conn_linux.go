package shm

import (
	"errors"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipcbench/ipcbench/transports"
)

// Sides of a channel: the listening side writes ring 0, the dialing side
// ring 1.
const (
	sideListen = 0
	sideDial   = 1
)

// Conn is one shm-lock or shm-ring connection: a net.Conn over two rings in a shared
// mapping. It is safe for concurrent use: Reads are serialised with each
// other, Writes with each other, and a Read and a Write may run at once.
//
// Read returns as soon as some bytes are in the ring (a partial read, as on
// a socket); it blocks while the ring is empty. Write returns when all of b
// is in the ring, blocking while the ring is full, so a Write larger than
// the ring streams through it; the bytes of one Write are never interleaved
// with another's. Read returns io.EOF itself (not wrapped, as io.Reader
// requires) after the peer's last byte when the peer closed in an orderly
// way. Other errors are *net.OpError values (Net "shm-lock" or "shm-ring") that wrap
// net.ErrClosed after Close, os.ErrDeadlineExceeded when a deadline passed,
// syscall.EPIPE (Write) when the peer closed or after CloseWrite,
// transports.ErrPeerGone when the peer process died or vanished without
// closing, and transports.ErrCorrupt when the shared state breaks the
// layout's invariants.
//
// Deadlines work like net.Pipe's: a deadline in the past makes pending and
// future calls fail; changing it while a call is blocked takes effect at
// once.
type Conn struct {
	mem []byte // the whole mapping, for munmap
	// tx and rx are written by the writing and the reading goroutine on
	// every call; the padding keeps them off each other's cache line.
	tx      ringView
	_       [cacheLine]byte
	rx      ringView
	_       [cacheLine]byte
	local   addr
	remote  addr
	mapping string
	kind    Kind
	set     settings // the channel's options (wait strategy and spin budget)

	reserved int // bytes of the region the last Reserve lent (under wmu)
	peeked   int // bytes of the region the last Peek lent (under rmu)

	// rspin and wspin calibrate shm-ring's adaptive wait for data and for
	// space (under rmu and wmu).
	rspin, wspin spinStats
	// rwait and wwait are shm-ring's waiters for data and for space
	// (used under rmu and wmu; see poller_linux.go).
	rwait, wwait waiter

	rmu sync.Mutex // serialises Reads; held by Close while it unmaps
	wmu sync.Mutex // serialises Writes; held by Close while it unmaps

	closed   atomic.Bool // Close was called
	wclosed  atomic.Bool // CloseWrite was called
	peerGone atomic.Bool // the liveness socket reported EOF or an error

	base time.Time // monotonic origin of the deadlines
	rdl  deadline
	wdl  deadline

	// stateMu serialises wake-ups that touch the mapping from outside
	// Read/Write (SetDeadline, CloseWrite, the liveness watcher) with the
	// unmapping in Close.
	stateMu  sync.Mutex
	unmapped bool

	live      *os.File // this side's end of the liveness socket pair
	watchDone chan struct{}

	// own is this process's wake page (one reference, released by
	// Close), peer the peer's, mapped for this connection (unmapped by
	// Close); see wake_linux.go.
	own, peer *wakePage
}

var (
	_ net.Conn                  = (*Conn)(nil)
	_ transports.CloseWriter    = (*Conn)(nil)
	_ transports.OptionReporter = (*Conn)(nil)
)

// ringView is one side's view of one ring.
type ringView struct {
	ctl  *ringCtl
	data []byte // the ring's bytes, len == ringCap
	mask uint64 // ringCap-1
	// pos is the index this side owns (wpos when writing, rpos when
	// reading) as this side last left it; the shared copy must match.
	pos uint64
	// faulted is how far from data's start this side has faulted in its
	// pages (see prefault); write says with which access.
	faulted uint64
	write   bool
	// tail is, for a shm-ring producer, the consumer's counter as last
	// read: space it shows free is certainly free, so the producer reads
	// the consumer's cache line only when that is not enough.
	tail uint64
	// pub is, for a shm-ring consumer, the tail as last published in the
	// mapping; pos runs ahead of it by the bytes taken since (see
	// consumed).
	pub uint64
	// unwoken is, for a shm-ring producer, set while it published bytes
	// without looking whether the reader sleeps (see writeRing).
	unwoken bool
	// shortLaps is, for a shm-ring producer, set while a Write goes
	// through the ring in short laps (see lapFor).
	shortLaps bool
	// skipFrom is, for a shm-ring producer, the head it last skipped from
	// (see rewind), 0 before the first skip (a skip never starts at a
	// lap's start, and 0 is one).
	skipFrom uint64
	// laps is, for a shm-lock consumer, the writer's count of rewinds
	// (ringCtl.laps) as this side last saw it: when it has changed, the
	// writer moved rpos to 0 (see rewindLock).
	laps uint32
	// coldUntil is, for a shm-ring producer, the head before which small
	// Writes do not try to go back to the start of the ring (see
	// rewindHot): hotLap bytes after a try that failed.
	coldUntil uint64
}

// addr is the net.Addr of an shm-lock or shm-ring endpoint: net is the
// transport's name.
type addr struct{ net, s string }

func (a addr) Network() string { return a.net }
func (a addr) String() string  { return a.s }

// noDeadline is a deadline's value when none is set.
const noDeadline = math.MaxInt64

// deadline is a deadline in nanoseconds since Conn.base (monotonic), or
// noDeadline.
type deadline struct{ ns atomic.Int64 }

func (d *deadline) set(t, base time.Time) {
	if t.IsZero() {
		d.ns.Store(noDeadline)
		return
	}
	d.ns.Store(int64(t.Sub(base)))
}

// noTimeLimit is what deadline.left returns when no deadline is set.
const noTimeLimit = time.Duration(math.MaxInt64)

// left returns the time left before the deadline (noTimeLimit when none
// is set), or os.ErrDeadlineExceeded when it passed.
func (d *deadline) left(base time.Time) (time.Duration, error) {
	dl := d.ns.Load()
	if dl == noDeadline {
		return noTimeLimit, nil
	}
	left := time.Duration(dl) - time.Since(base)
	if left <= 0 {
		return 0, os.ErrDeadlineExceeded
	}
	return left, nil
}

// newConn makes the connection of one side over an attached mapping and
// starts its liveness watcher. It takes ownership of mem and live.
func newConn(kind Kind, set settings, mem []byte, ringCap, side, index int, live *os.File, own, peer *wakePage) *Conn {
	h := headerOf(mem)
	rc := uint64(ringCap)
	ring := func(i int) ringView {
		off := uint64(headerSize) + uint64(i)*rc
		return ringView{ctl: &h.rings[i], data: mem[off : off+rc : off+rc], mask: rc - 1}
	}
	c := &Conn{
		mem:       mem,
		mapping:   mappingName(h.flags.Load()),
		kind:      kind,
		set:       set,
		base:      time.Now(),
		live:      live,
		own:       own,
		peer:      peer,
		watchDone: make(chan struct{}),
	}
	c.rdl.ns.Store(noDeadline)
	c.wdl.ns.Store(noDeadline)
	names := [2]string{"listen", "dial"}
	c.local = addr{kind.Name(), kind.Name() + ":" + c.mapping + "#" + strconv.Itoa(index) + "/" + names[side]}
	c.remote = addr{kind.Name(), kind.Name() + ":" + c.mapping + "#" + strconv.Itoa(index) + "/" + names[1-side]}
	c.tx, c.rx = ring(side), ring(1-side)
	c.tx.write = true
	c.tx.pos = c.tx.ctl.wpos.Load()
	c.rx.pos = c.rx.ctl.rpos.Load()
	c.rx.pub = c.rx.pos
	c.rx.laps = c.rx.ctl.laps.Load()
	c.tx.tail = c.tx.ctl.rpos.Load()
	c.rwait = waiter{c: c, wake: make(chan struct{}, 1), idx: -1, flag: &c.rx.ctl.readerWaiting, seq: &c.rx.ctl.dataSeq}
	c.wwait = waiter{c: c, write: true, wake: make(chan struct{}, 1), idx: -1, flag: &c.tx.ctl.writerWaiting, seq: &c.tx.ctl.spaceSeq}
	openConns.Add(1)
	noteProcs()
	go c.watch()
	return c
}

// peerEnd loads whether the peer process is gone and then flag, the other
// side's closed flag in the shared header (writerClosed for a reader,
// readerClosed for a writer), in that order. An orderly Close sets its
// flag before it closes the liveness socket, so a side that sees the peer
// gone also sees the flag, and reports the orderly end (io.EOF, EPIPE)
// rather than ErrPeerGone. In the other order a Close that fell between
// the two loads looked like a crash.
func (c *Conn) peerEnd(flag *atomic.Uint32) (closed, gone bool) {
	gone = c.peerGone.Load()
	if hook := betweenEndLoads.Load(); hook != nil {
		(*hook)(c)
	}
	return flag.Load() != 0, gone
}

// betweenEndLoads, when set (by a test), runs in peerEnd between its two
// loads.
var betweenEndLoads atomic.Pointer[func(*Conn)]

// beforeSleep, when set (by a test), is called with every waiter about to
// sleep (on its futex, or parked with the poller) for at most left.
var beforeSleep atomic.Pointer[func(w *waiter, left time.Duration)]

// noteSleep calls beforeSleep, if set.
func noteSleep(w *waiter, left time.Duration) {
	if hook := beforeSleep.Load(); hook != nil {
		(*hook)(w, left)
	}
}

// openConns counts this process's open connections (see mayWaitSolo).
var openConns atomic.Int32

// watch waits for the liveness socket to report the peer's end closed, then
// marks the peer gone and wakes every local waiter. It returns without
// doing so when Close closed the local end.
func (c *Conn) watch() {
	defer close(c.watchDone)
	buf := make([]byte, 16)
	for {
		_, err := c.live.Read(buf)
		if err == nil {
			continue // the peer sends nothing after the set-up; ignore it
		}
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// A deadline left over from the set-up is not the peer's
			// end: clear it and watch on.
			c.live.SetReadDeadline(time.Time{})
			continue
		}
		break // io.EOF, ECONNRESET: every copy of the other end is closed
	}
	c.peerGone.Store(true)
	c.wakeLocal(true, true)
}

// wakeLocal makes this side's sleepers re-check their state: the reader
// (rx) and/or the writer (tx). It bumps their futex words so that a sleeper
// that is about to sleep does not, and wakes the ones asleep.
func (c *Conn) wakeLocal(reader, writer bool) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.unmapped {
		return
	}
	if reader {
		c.rwait.signal()
	}
	if writer {
		c.wwait.signal()
	}
	if reader {
		c.rx.ctl.dataSeq.Add(1)
		wakeAll(&c.rx.ctl.dataSeq)
		wakeAll(&c.rx.ctl.lock)
	}
	if writer {
		c.tx.ctl.spaceSeq.Add(1)
		wakeAll(&c.tx.ctl.spaceSeq)
		wakeAll(&c.tx.ctl.lock)
	}
}

// lock takes the lock of ring r, giving up when the connection is closed,
// the deadline dl passes, the peer is gone (a dead peer never releases a
// lock it held) or the lock word is corrupt.
func (c *Conn) lock(r *ringView, dl *deadline) error {
	locked, corrupt := tryLock(&r.ctl.lock)
	for !locked {
		if corrupt {
			return corruptf("lock word holds %d", r.ctl.lock.Load())
		}
		if c.closed.Load() {
			return net.ErrClosed
		}
		// Read before the attempt: a peer that closed (or died) after it
		// released the lock leaves it free, and the attempt takes it.
		gone := c.peerGone.Load()
		left, err := dl.left(c.base)
		if err != nil {
			return err
		}
		if locked, corrupt = lockSlow(&r.ctl.lock, min(left, lockWaitSlice)); !locked && gone && !corrupt {
			return transports.ErrPeerGone
		}
	}
	return nil
}

// check validates ring r's shared indices (the lock held) and returns the
// bytes in use. owned is the index r's side owns: wpos for the writer, rpos
// for the reader. A reader whose rpos the writer moved back to 0 (laps
// changed, see rewindLock) takes it from there when it reserves (reserve
// true); at its commit, the ring has held its reservation since, and a
// rewind needs an empty ring, so a changed laps is corruption.
func (r *ringView) check(owned *atomic.Uint64, reserve bool) (used uint64, err error) {
	used = r.ctl.used.Load()
	wpos := r.ctl.wpos.Load()
	rpos := r.ctl.rpos.Load()
	size := r.mask + 1
	switch {
	case wpos >= size || rpos >= size:
		return 0, corruptf("ring index beyond the ring (wpos %d, rpos %d, capacity %d)", wpos, rpos, size)
	case used > size:
		return 0, corruptf("ring holds %d bytes, more than its capacity %d", used, size)
	case (rpos+used)&r.mask != wpos:
		return 0, corruptf("ring indices disagree (rpos %d + used %d != wpos %d mod %d)", rpos, used, wpos, size)
	}
	if !r.write {
		if laps := r.ctl.laps.Load(); laps != r.laps {
			// The writer moved both indices back to 0 (rewindLock), and
			// only this side moves rpos on.
			switch {
			case !reserve:
				return 0, corruptf("ring rewound under its reader's reservation (laps %d, was %d)", laps, r.laps)
			case rpos != 0:
				return 0, corruptf("ring index at %d after the writer's rewind, not 0", rpos)
			}
			r.pos, r.laps = 0, laps
		}
	}
	if owned.Load() != r.pos {
		return 0, corruptf("ring index moved under its owner (%d, left at %d)", owned.Load(), r.pos)
	}
	return used, nil
}

// rewindLock moves shm-lock's ring w back to its start (the lock held)
// when the reader took everything and the writer is at least hotLap bytes
// into the ring: both indices to 0, and laps counted, so that the reader
// knows its index moved (see check). Write calls it for Writes of up to
// hotWrite bytes, as shm-ring's hot laps (ring_linux.go) go back for
// those alone: larger ones fill the ring. Small messages then keep
// reusing the ring's first few pages, which stay in both cores' caches
// and are mapped already. Going round a whole 1 MiB ring instead, with 64
// connections, each side faulted in 128 MiB of pages before the first lap
// ended, and fanin of 1 KiB at 64 connections in 300 ms repeats measured
// little else: 83k messages a second before, 348k after
// (results/shm-lock-hotlap-before.jsonl and -after.jsonl, unpinned).
func (w *ringView) rewindLock(used uint64) {
	if used != 0 || w.pos < hotLap {
		return
	}
	w.pos = 0
	w.ctl.wpos.Store(0)
	w.ctl.rpos.Store(0)
	w.ctl.laps.Add(1)
}

// Read reads up to len(b) bytes: as many as the ring holds, blocking while
// it is empty. See Conn for the errors.
func (c *Conn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var n int
	var err error
	if c.kind == Ring {
		n, err = c.readRing(b)
	} else {
		n, err = c.read(b)
	}
	if err != nil && err != io.EOF {
		return n, c.opError("read", err)
	}
	return n, err
}

func (c *Conn) read(b []byte) (int, error) {
	r := &c.rx
	var spun time.Duration // polling time of this call, across rounds (see waitUnlock)
	for {
		if c.closed.Load() {
			return 0, net.ErrClosed // before the mapping is touched: Close unmaps it
		}
		// Read the wake-up word before the deadline, and the end-of-stream
		// facts before looking at the ring: a commit, a deadline change or
		// a wake-up that happens after this point changes dataSeq, so the
		// sleep below does not miss it (a Close since the check above is
		// caught in waitUnlock).
		seq := r.ctl.dataSeq.Load()
		if _, err := c.rdl.left(c.base); err != nil {
			return 0, err
		}
		if len(b) == 0 {
			return 0, nil
		}
		writerDone, gone := c.peerEnd(&r.ctl.writerClosed)

		if err := c.lock(r, &c.rdl); err != nil {
			return 0, err
		}
		used, err := r.check(&r.ctl.rpos, true)
		if err != nil {
			unlock(&r.ctl.lock)
			return 0, err
		}
		if used > 0 {
			unlock(&r.ctl.lock)
			n := min(uint64(len(b)), used)
			r.copyOut(r.pos, b[:n])
			if err := c.commitRead(r, n); err != nil {
				return 0, err
			}
			return int(n), nil
		}
		if writerDone {
			unlock(&r.ctl.lock)
			return 0, io.EOF
		}
		if gone {
			unlock(&r.ctl.lock)
			return 0, transports.ErrPeerGone
		}
		c.waitUnlock(r, &c.rwait, seq, &c.rdl, &spun)
	}
}

// waitUnlock releases ring r's lock and waits, as w, for the other side,
// as the connection's wait option says: alone in its process (see
// mayWaitSolo), a waiter first polls the ring's used count for the spin
// budget (none with wait=futex, none while the adaptive calibration says
// the other side shares this core; see spinBudget), then, still alone
// and allowed to hold its processor while it sleeps (maySleepSolo),
// announces itself in w.flag and sleeps on the futex word w.seq, which it
// read as seq before taking the lock; any other waiter parks with the
// process's poller, which polls for it for the same budget. *spun is the
// time the caller's Read or Write polled so far, in all its rounds: a
// call polls for one budget at most, as shm-ring's await does, so that a
// Read that waits through many futex sleeps (each at most dataWaitSlice)
// counts one lost spin, not one per sleep. Neither waits past the
// deadline dl, and neither waits at all once it passed.
func (c *Conn) waitUnlock(r *ringView, w *waiter, seq uint32, dl *deadline, spun *time.Duration) {
	unlock(&r.ctl.lock)
	// The time left is read now, not before the lock was taken: waiting
	// for the lock took some of it.
	left, err := dl.left(c.base)
	if err != nil {
		return // the caller finds out
	}
	st := &c.rspin
	if w.write {
		st = &c.wspin
	}
	budget := c.spinBudget(st, w)
	w.budget = budget
	if mayWaitSolo() && thePoller.solo() {
		if *spun < budget {
			// used is read without the lock: a stale look only costs a
			// round of the caller's loop, which takes the lock.
			if won := c.spin(spun, &left, budget, st, w); won || left <= 0 {
				thePoller.soloDone()
				return // ready, or the deadline passed while polling: the caller sees which
			}
		}
		// The flag is set after the unlock: a commit since seq was read
		// bumped w.seq, and the futex sleep returns at once.
		slept := maySleepSolo()
		if slept {
			w.flag.Store(1)
			if w.takeWake() {
				// Close, or a deadline changed, since the caller looked:
				// it may have bumped w.seq before seq was read. The
				// caller looks again.
				w.flag.Store(0)
				thePoller.soloDone()
				return
			}
			noteSleep(w, left)
			futexWait(w.seq, seq, min(left, dataWaitSlice))
		}
		thePoller.soloDone()
		if slept {
			return
		}
	}
	if !w.ready() && !c.closed.Load() && !c.peerGone.Load() {
		w.park(left)
	}
}

// copyOut copies len(b) bytes from the ring at index i into b, wrapping at
// the ring's end; the caller checked that the ring holds them.
func (r *ringView) copyOut(i uint64, b []byte) {
	r.prefault(i, uint64(len(b)))
	k := ringCopy(b, r.data[i:])
	ringCopy(b[k:], r.data)
}

// copyIn copies b into the ring at index i, wrapping at the ring's end;
// the caller checked that the ring has room for it.
func (r *ringView) copyIn(i uint64, b []byte) {
	r.prefault(i, uint64(len(b)))
	k := ringCopy(r.data[i:], b)
	ringCopy(r.data, b[k:])
}

// commitRead consumes n bytes the reader copied out and wakes the writer if
// it waits for space. On error nothing is consumed: the bytes stay in the
// ring for the next Read.
func (c *Conn) commitRead(r *ringView, n uint64) error {
	if err := c.lock(r, &c.rdl); err != nil {
		return err
	}
	used, err := r.check(&r.ctl.rpos, false)
	if err == nil && used < n {
		err = corruptf("ring shrank from at least %d to %d bytes under its reader", n, used)
	}
	if err != nil {
		unlock(&r.ctl.lock)
		return err
	}
	r.pos = (r.pos + n) & r.mask
	r.ctl.rpos.Store(r.pos)
	r.ctl.used.Store(used - n)
	r.ctl.spaceSeq.Add(1)
	wake := r.ctl.writerWaiting.Swap(0) != 0
	unlock(&r.ctl.lock)
	if wake {
		wakeAll(&r.ctl.spaceSeq)
	}
	c.peer.wakeUp()
	return nil
}

// Write writes all of b, blocking while the ring is full. It returns the
// number of bytes written, less than len(b) only with an error. See Conn
// for the errors.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var n int
	var err error
	if c.kind == Ring {
		n, err = c.writeRing(b)
	} else {
		n, err = c.write(b)
	}
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

func (c *Conn) write(b []byte) (int, error) {
	w := &c.tx
	total := 0
	var spun time.Duration // polling time of this call, across rounds (see waitUnlock)
	for {
		switch {
		case c.closed.Load():
			return total, net.ErrClosed
		case c.wclosed.Load():
			return total, syscall.EPIPE
		}
		seq := w.ctl.spaceSeq.Load() // before the deadline: see read
		if _, err := c.wdl.left(c.base); err != nil {
			return total, err
		}
		if total == len(b) {
			return total, nil
		}
		switch readerDone, gone := c.peerEnd(&w.ctl.readerClosed); {
		case readerDone:
			return total, syscall.EPIPE
		case gone:
			return total, transports.ErrPeerGone
		}

		if err := c.lock(w, &c.wdl); err != nil {
			return total, err
		}
		used, err := w.check(&w.ctl.wpos, true)
		if err != nil {
			unlock(&w.ctl.lock)
			return total, err
		}
		if len(b) <= hotWrite {
			w.rewindLock(used)
		}
		if free := w.mask + 1 - used; free > 0 {
			unlock(&w.ctl.lock)
			n := min(uint64(len(b)-total), free)
			w.copyIn(w.pos, b[total:total+int(n)])
			if err := c.commitWrite(w, n); err != nil {
				return total, err
			}
			total += int(n)
			continue
		}
		c.waitUnlock(w, &c.wwait, seq, &c.wdl, &spun)
	}
}

// commitWrite publishes n bytes the writer copied in and wakes the reader if
// it waits for data. On error nothing is published.
func (c *Conn) commitWrite(w *ringView, n uint64) error {
	if err := c.lock(w, &c.wdl); err != nil {
		return err
	}
	used, err := w.check(&w.ctl.wpos, false)
	if err == nil && used+n > w.mask+1 {
		err = corruptf("ring grew to %d bytes under its writer, no room for %d more", used, n)
	}
	if err != nil {
		unlock(&w.ctl.lock)
		return err
	}
	w.pos = (w.pos + n) & w.mask
	w.ctl.wpos.Store(w.pos)
	w.ctl.used.Store(used + n)
	w.ctl.dataSeq.Add(1)
	wake := w.ctl.readerWaiting.Swap(0) != 0
	unlock(&w.ctl.lock)
	if wake {
		wakeAll(&w.ctl.dataSeq)
	}
	c.peer.wakeUp()
	return nil
}

// CloseWrite shuts down the sending direction: the peer reads io.EOF after
// the last byte written, later Writes fail with an error wrapping
// syscall.EPIPE, and Read keeps working. A pending Write is unblocked.
func (c *Conn) CloseWrite() error {
	if c.closed.Load() {
		return c.opError("close", net.ErrClosed)
	}
	if c.wclosed.Swap(true) {
		return nil
	}
	c.wakeLocal(false, true)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return nil // Close marked the direction closed already
	}
	c.signalWriterClosed()
	return nil
}

// signalWriterClosed tells the peer's reader that no more data comes. The
// caller holds wmu, so no commit follows it.
func (c *Conn) signalWriterClosed() {
	c.tx.ctl.writerClosed.Store(1)
	c.peer.wakeUp()
	c.tx.ctl.dataSeq.Add(1)
	wakeAll(&c.tx.ctl.dataSeq)
}

// Close closes the connection. Pending and later Reads and Writes fail with
// an error wrapping net.ErrClosed. The peer reads the bytes already written
// and then io.EOF, and its Writes fail with syscall.EPIPE. Close unmaps the
// shared memory; a second Close returns an error wrapping net.ErrClosed.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return c.opError("close", net.ErrClosed)
	}
	openConns.Add(-1)
	c.wakeLocal(true, true)
	// Wait for the local Read and Write to return, so that nothing touches
	// the mapping once it is unmapped.
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()

	// Orderly close: the flags go into the mapping before the liveness
	// socket closes, so the peer sees them by the time it sees the EOF.
	// readerClosed goes first: signalWriterClosed rings the peer's
	// doorbell, and a poller woken by it must find both flags set (a
	// parked writer of the peer waits for space that will never come).
	c.rx.ctl.readerClosed.Store(1)
	c.signalWriterClosed()
	c.rx.ctl.spaceSeq.Add(1)
	wakeAll(&c.rx.ctl.spaceSeq)

	err := c.live.Close()
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	<-c.watchDone

	c.stateMu.Lock()
	c.unmapped = true
	if merr := unmap(c.mem); merr != nil && err == nil {
		err = merr
	}
	if merr := c.peer.close(); merr != nil && err == nil {
		err = merr
	}
	c.stateMu.Unlock()
	releaseWake()
	if err != nil {
		return c.opError("close", err)
	}
	return nil
}

// LocalAddr returns this side's address ("shm-lock:memfd#0/listen").
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address ("shm-lock:memfd#0/dial").
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines, as SetReadDeadline and
// SetWriteDeadline do.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.rdl.set(t, c.base)
	c.wdl.set(t, c.base)
	c.wakeLocal(true, true)
	return nil
}

// SetReadDeadline sets the deadline for pending and future Reads: once it
// passes, Read fails with an error wrapping os.ErrDeadlineExceeded until
// the deadline is moved into the future or cleared with the zero time. A
// pending Read sees the new deadline at once.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.rdl.set(t, c.base)
	c.wakeLocal(true, false)
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes, as
// SetReadDeadline does for Reads. A Write that times out may have written
// part of its bytes; it returns their count.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.wdl.set(t, c.base)
	c.wakeLocal(false, true)
	return nil
}

// CheapCalls reports true (frame.CheapCalls): Read and Write make no system
// call unless a side has to sleep, so a framing layer gains by handing
// large payloads over in calls of their own rather than copying them
// through a buffer of its own.
func (c *Conn) CheapCalls() bool { return true }

// EffectiveOptions reports the settings in effect: "ring_bytes" (the
// capacity of each direction's ring), "lock" ("futex-mutex") and "mapping"
// ("memfd" or "file").
func (c *Conn) EffectiveOptions() map[string]string {
	return effectiveOptions(c.kind, int(c.rx.mask+1), c.mapping, c.set)
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.kind.Name(), Source: c.local, Addr: c.remote, Err: err}
}
