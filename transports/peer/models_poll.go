package peer

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/ipcbench/ipcbench/internal/frame"
	"golang.org/x/sys/unix"
)

// lpParser follows length-prefixed frames through a byte stream that
// arrives in pieces of any size, without copying payloads.
type lpParser struct {
	max    int
	hdr    [frame.LengthHeaderLen]byte
	hn     int  // bytes of the length prefix gathered
	inBody bool // between a prefix and the end of its payload
	n, off int  // the payload's length, and the offset reached in it
}

// feed consumes b up to its end, or up to and including the prefix of an
// empty frame (then empty is true and the rest of b is left for the next
// call). For every piece of a payload it calls body(piece, off), off being
// the piece's offset in the payload, and at the end of every non-empty
// payload done(n, end), end being the offset in b just past it. A prefix
// above max gives an error wrapping frame.ErrTooLarge.
func (p *lpParser) feed(b []byte, body func(piece []byte, off int), done func(n, end int)) (used int, empty bool, err error) {
	for used < len(b) {
		if !p.inBody {
			c := copy(p.hdr[p.hn:], b[used:])
			p.hn += c
			used += c
			if p.hn < len(p.hdr) {
				return used, false, nil
			}
			p.hn = 0
			size := binary.BigEndian.Uint32(p.hdr[:])
			if uint64(size) > uint64(p.max) {
				return used, false, fmt.Errorf("%w: frame length %d exceeds maximum %d", frame.ErrTooLarge, size, p.max)
			}
			if size == 0 {
				return used, true, nil
			}
			p.inBody, p.n, p.off = true, int(size), 0
		}
		c := min(p.n-p.off, len(b)-used)
		body(b[used:used+c], p.off)
		used += c
		p.off += c
		if p.off == p.n {
			p.inBody = false
			done(p.n, used)
		}
	}
	return used, false, nil
}

// mid reports whether the stream stopped inside a frame.
func (p *lpParser) mid() bool { return p.hn > 0 || p.inBody }

// eofErr is the error for the end of the stream: nil at a frame boundary,
// else a truncated frame.
func (p *lpParser) eofErr(messages int64) error {
	if !p.mid() {
		return nil
	}
	got := p.hn
	if p.inBody {
		got = frame.LengthHeaderLen + p.off
	}
	return fmt.Errorf("reading message %d: %w: stream ended after %d bytes of a frame: %w",
		messages, frame.ErrTruncated, got, io.ErrUnexpectedEOF)
}

// pollConn is one connection of the poll loop.
type pollConn struct {
	fds    fdSet
	index  int
	st     *ConnStats
	p      lpParser
	sk     *sink  // sink role; nil for echo
	out    []byte // bytes to write, from outOff up to ready
	outOff int    // bytes of out already written
	ready  int    // out[:ready] is whole frames, to be written; an echo's partial frame follows
	done   bool   // ended (EOF or error); its descriptors are closed
	events uint32 // the events registered for fds.r (fds.w when writing a pipe)
}

// outBuffer collects a sink's acknowledgements for the poll loop to write.
type outBuffer struct{ b *[]byte }

func (o outBuffer) Write(p []byte) (int, error) {
	*o.b = append(*o.b, p...)
	return len(p), nil
}

// servePoll is ModelPoll: one goroutine, locked to its thread, serves
// every connection from one epoll set over non-blocking descriptors. An
// eventfd in the set ends it when the job shuts down.
func (s *server) servePoll(sv *serving, fds []fdSet, role string, cfg frame.Config, stats []ConnStats) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg, _ = cfg.Normalize() // checked when the job arrived
	conns := make([]*pollConn, len(fds))
	for i, f := range fds {
		pc := &pollConn{fds: f, index: i, st: &stats[i], p: lpParser{max: cfg.MaxSize}}
		if role == RoleSink {
			pc.sk = newSink(outBuffer{b: &pc.out}, cfg, i, pc.st)
		}
		conns[i] = pc
	}
	defer func() {
		for _, pc := range conns {
			if !pc.done {
				pc.fds.close()
			}
		}
		for _, c := range sv.conns {
			c.Close()
		}
	}()
	failAll := func(err error) {
		for _, pc := range conns {
			if pc.st.Error == "" {
				pc.st.Error = err.Error()
			}
		}
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		failAll(os.NewSyscallError("epoll_create1", err))
		return
	}
	defer unix.Close(ep)
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		failAll(os.NewSyscallError("eventfd", err))
		return
	}
	// The job's shutdown rings wake, unless this function has returned:
	// then wake is closed, and its number may be another descriptor's.
	var wakeMu sync.Mutex
	wakeOpen := true
	defer func() {
		wakeMu.Lock()
		wakeOpen = false
		unix.Close(wake)
		wakeMu.Unlock()
	}()
	if !sv.onClose(func() {
		wakeMu.Lock()
		defer wakeMu.Unlock()
		if wakeOpen {
			unix.Write(wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		}
	}) {
		return
	}
	const wakeTag = -1
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeTag}); err != nil {
		failAll(os.NewSyscallError("epoll_ctl", err))
		return
	}
	for _, pc := range conns {
		if err := pc.fds.setBlocking(false); err != nil {
			failAll(err)
			return
		}
		pc.events = unix.EPOLLIN
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, pc.fds.r, &unix.EpollEvent{Events: pc.events, Fd: int32(pc.index)}); err != nil {
			failAll(os.NewSyscallError("epoll_ctl", err))
			return
		}
	}
	live := len(conns)
	buf := make([]byte, readBufSize)
	events := make([]unix.EpollEvent, len(conns)+1)
	for live > 0 {
		n, err := unix.EpollWait(ep, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			failAll(os.NewSyscallError("epoll_wait", err))
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == wakeTag {
				return // shutting down
			}
			pc := conns[ev.Fd]
			if pc.done {
				continue
			}
			if err := pc.step(ep, buf); err != nil {
				pc.st.Error = err.Error()
				pc.finish(ep)
			}
			if pc.done {
				live--
			}
		}
	}
}

// step handles the events of one connection: it writes what is pending,
// or reads and handles what arrived.
func (pc *pollConn) step(ep int, buf []byte) error {
	if pc.outOff < pc.ready {
		return pc.flush(ep)
	}
	n, err := unix.Read(pc.fds.r, buf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return nil
	case err != nil:
		return fmt.Errorf("reading message %d: %w", pc.st.Messages, os.NewSyscallError("read", err))
	case n == 0:
		if err := pc.p.eofErr(pc.st.Messages); err != nil {
			return err
		}
		pc.finish(ep)
		return nil
	}
	if n < len(buf) {
		pc.st.ShortReads++
	}
	if err := pc.handle(buf[:n]); err != nil {
		return err
	}
	return pc.flush(ep)
}

// handle runs the role over piece b: the echo copies it to the output,
// to be written back frame by frame as each is complete (as the goroutine
// model's echo does), and counts frames; the sink checks payloads and
// queues acknowledgements.
func (pc *pollConn) handle(b []byte) error {
	base := len(pc.out)
	if pc.sk == nil {
		pc.out = append(pc.out, b...)
	}
	off := 0 // where the current feed started in b
	done := func(n, end int) {
		if pc.sk != nil {
			pc.sk.counted(n)
			return
		}
		pc.st.Messages++
		pc.st.Bytes += int64(n)
		pc.ready = base + off + end
	}
	for off < len(b) {
		used, empty, err := pc.p.feed(b[off:], pc.body, done)
		if err != nil {
			return fmt.Errorf("reading message %d: %w", pc.st.Messages, err)
		}
		off += used
		if !empty {
			continue
		}
		if pc.sk == nil {
			pc.st.Messages++ // an echo counts empty frames too
			pc.ready = base + off
			continue
		}
		if err := pc.sk.ack(); err != nil {
			return err
		}
		pc.ready = len(pc.out)
	}
	return nil
}

// body checks a piece of a payload for the sink (sink.checkPart); the
// echo checks nothing.
func (pc *pollConn) body(piece []byte, off int) {
	if pc.sk != nil {
		pc.sk.checkPart(piece, off)
	}
}

// flush writes pending output without blocking. While some is left it
// waits for the write descriptor to become writable instead of reading:
// a connection that does not read its answers stops being read.
func (pc *pollConn) flush(ep int) error {
	for pc.outOff < pc.ready {
		n, err := unix.Write(pc.fds.w, pc.out[pc.outOff:pc.ready])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return pc.watch(ep, true)
		}
		if err != nil {
			return fmt.Errorf("echoing message %d: %w", pc.st.Messages, os.NewSyscallError("write", err))
		}
		pc.outOff += n
	}
	// Keep an echo's partial frame, at the start.
	pc.out = pc.out[:copy(pc.out, pc.out[pc.ready:])]
	pc.outOff, pc.ready = 0, 0
	return pc.watch(ep, false)
}

// watch registers interest in writing (or, when writing is false, in
// reading), on the descriptor that direction uses.
func (pc *pollConn) watch(ep int, writing bool) error {
	want := uint32(unix.EPOLLIN)
	if writing {
		want = unix.EPOLLOUT
	}
	if want == pc.events {
		return nil
	}
	if pc.fds.sock() {
		pc.events = want
		return os.NewSyscallError("epoll_ctl", unix.EpollCtl(ep, unix.EPOLL_CTL_MOD, pc.fds.r, &unix.EpollEvent{Events: want, Fd: int32(pc.index)}))
	}
	// A pipe pair: move the registration between its two descriptors.
	from, to := pc.fds.r, pc.fds.w
	if !writing {
		from, to = to, from
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, from, nil); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	pc.events = want
	return os.NewSyscallError("epoll_ctl", unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, to, &unix.EpollEvent{Events: want, Fd: int32(pc.index)}))
}

// finish takes the connection out of the epoll set and closes its
// descriptors.
func (pc *pollConn) finish(ep int) {
	if pc.done {
		return
	}
	pc.done = true
	fd := pc.fds.r
	if pc.events == unix.EPOLLOUT {
		fd = pc.fds.w
	}
	unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, nil)
	pc.fds.close()
}
