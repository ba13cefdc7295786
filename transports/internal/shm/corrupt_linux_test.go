package shm

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// TestLayoutOffsets checks the Go types against the byte offsets the
// package documentation gives.
func TestLayoutOffsets(t *testing.T) {
	var h header
	var r ringCtl
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"magic", unsafe.Offsetof(h.magic), offMagic},
		{"version", unsafe.Offsetof(h.version), offVersion},
		{"headerSize", unsafe.Offsetof(h.headerSize), offHeaderSize},
		{"ringCap", unsafe.Offsetof(h.ringCap), offRingCap},
		{"mapSize", unsafe.Offsetof(h.mapSize), offMapSize},
		{"state", unsafe.Offsetof(h.state), offState},
		{"flags", unsafe.Offsetof(h.flags), offFlags},
		{"rings[0]", unsafe.Offsetof(h.rings), offRing0},
		{"rings[1]", unsafe.Offsetof(h.rings) + unsafe.Sizeof(r), offRing1},
		{"lock", unsafe.Offsetof(r.lock), offLock},
		{"used", unsafe.Offsetof(r.used), offUsed},
		{"laps", unsafe.Offsetof(r.laps), offLaps},
		{"wpos", unsafe.Offsetof(r.wpos), offWpos},
		{"dataSeq", unsafe.Offsetof(r.dataSeq), offDataSeq},
		{"writerClosed", unsafe.Offsetof(r.writerClosed), offWriterClosed},
		{"readerWaiting", unsafe.Offsetof(r.readerWaiting), offReaderWaiting},
		{"writerCPU", unsafe.Offsetof(r.writerCPU), offWriterCPU},
		{"skip", unsafe.Offsetof(r.skip), offSkip},
		{"rpos", unsafe.Offsetof(r.rpos), offRpos},
		{"spaceSeq", unsafe.Offsetof(r.spaceSeq), offSpaceSeq},
		{"readerClosed", unsafe.Offsetof(r.readerClosed), offReaderClosed},
		{"writerWaiting", unsafe.Offsetof(r.writerWaiting), offWriterWaiting},
		{"ringCtl size", unsafe.Sizeof(r), 3 * cacheLine},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s at %#x, documented at %#x", tt.name, tt.got, tt.want)
		}
	}
	// The producer's and the consumer's words are on different cache lines.
	if offWpos/cacheLine == offRpos/cacheLine || offDataSeq/cacheLine == offSpaceSeq/cacheLine {
		t.Error("producer and consumer words share a cache line")
	}
}

// TestHeaderCorruptionAtDial corrupts a channel's header through a mapping
// of its file made by the test, as a broken peer would, and checks that
// Dial refuses it with an error wrapping ErrCorrupt (or ErrBadEndpoint for
// a channel already taken), without touching anything outside the mapping.
func TestHeaderCorruptionAtDial(t *testing.T) {
	mapSize := mapSizeFor(MinRing)
	tests := []struct {
		name    string
		corrupt func(mem []byte)
		want    error
	}{
		{"wrong-magic", func(m []byte) { put64(m, offMagic, 0x1234) }, transports.ErrCorrupt},
		{"wrong-version", func(m []byte) { put32(m, offVersion, layoutVersion+1) }, transports.ErrCorrupt},
		{"wrong-header-size", func(m []byte) { put32(m, offHeaderSize, 64) }, transports.ErrCorrupt},
		{"capacity-bigger-than-mapping", func(m []byte) {
			put64(m, offRingCap, 2*MinRing)
			put64(m, offMapSize, uint64(mapSizeFor(2*MinRing)))
		}, transports.ErrCorrupt},
		{"capacity-huge", func(m []byte) {
			put64(m, offRingCap, 1<<62)
			put64(m, offMapSize, headerSize+1<<63)
		}, transports.ErrCorrupt},
		{"capacity-not-power-of-two", func(m []byte) {
			put64(m, offRingCap, MinRing+8)
			put64(m, offMapSize, uint64(mapSizeFor(MinRing+8)))
		}, transports.ErrCorrupt},
		{"capacity-zero", func(m []byte) { put64(m, offRingCap, 0) }, transports.ErrCorrupt},
		{"map-size-inconsistent", func(m []byte) { put64(m, offMapSize, uint64(mapSize-1)) }, transports.ErrCorrupt},
		{"unknown-flags", func(m []byte) { put32(m, offFlags, 0x80) }, transports.ErrCorrupt},
		{"unknown-state", func(m []byte) { put32(m, offState, 7) }, transports.ErrCorrupt},
		{"still-initialising", func(m []byte) { put32(m, offState, 0) }, transports.ErrCorrupt},
		{"already-attached", func(m []byte) { put32(m, offState, 2) }, transports.ErrBadEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listenT(t, transports.Config{BufferSize: MinRing})
			ep := l.Endpoint()
			mem := mapFileT(t, ep.Files[0])
			if len(mem) != mapSize {
				t.Fatalf("mapping has %d bytes, want %d", len(mem), mapSize)
			}
			tt.corrupt(mem)
			c, err := New(Lock).Dial(context.Background(), ep)
			if err == nil {
				c.Close()
				t.Fatalf("Dial accepted a corrupt header")
			}
			wantOpErr(t, "Dial", err, tt.want)
		})
	}
}

// TestRingCorruption corrupts the ring control blocks of an attached
// channel and checks that the operations on the affected ring fail with
// an error wrapping ErrCorrupt rather than panic, hang or read or write
// outside the mapping.
func TestRingCorruption(t *testing.T) {
	const ring0, ring1 = offRing0, offRing1 // ring 0: listener writes, dialer reads
	tests := []struct {
		name    string
		corrupt func(mem []byte)
		// which operations must fail
		listenWrite, dialRead, dialWrite, listenRead bool
	}{
		{"wpos-beyond-ring", func(m []byte) { put64(m, ring0+offWpos, MinRing) }, true, true, false, false},
		{"rpos-beyond-ring", func(m []byte) { put64(m, ring0+offRpos, MinRing+5) }, true, true, false, false},
		{"index-max", func(m []byte) { put64(m, ring1+offRpos, math.MaxUint64) }, false, false, true, true},
		{"used-larger-than-ring", func(m []byte) { put64(m, ring0+offUsed, MinRing+1) }, true, true, false, false},
		{"used-max", func(m []byte) { put64(m, ring1+offUsed, math.MaxUint64) }, false, false, true, true},
		{"used-inconsistent", func(m []byte) { put64(m, ring0+offUsed, 10) }, true, true, false, false},
		{"wpos-moved-under-writer", func(m []byte) {
			put64(m, ring0+offUsed, 16)
			put64(m, ring0+offWpos, 16)
		}, true, false, false, false},
		{"rpos-moved-under-reader", func(m []byte) {
			// consistent (rpos + used == wpos mod capacity), but not where
			// the reader left rpos
			put64(m, ring1+offRpos, 8)
			put64(m, ring1+offUsed, MinRing-8)
		}, false, false, false, true},
		{"lock-word-invalid", func(m []byte) { put32(m, ring1+offLock, 3) }, false, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCorruptOps(t, Lock, tt.corrupt, [4]bool{tt.listenWrite, tt.dialRead, tt.dialWrite, tt.listenRead})
		})
	}
}

// TestLockRewindCorruption checks the reader's look at shm-lock's rewinds
// (see rewindLock): the reader's index may move only to 0, and only with
// the writer's count of rewinds; anything else is ErrCorrupt, and the
// bytes stay unread.
func TestLockRewindCorruption(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(m []byte, pos uint64)
	}{
		// laps counted, the indices left where they were
		{"laps-without-rewind", func(m []byte, pos uint64) { put32(m, offRing0+offLaps, 1) }},
		// the indices back at 0, laps not counted
		{"rewind-without-laps", func(m []byte, pos uint64) {
			put64(m, offRing0+offWpos, 0)
			put64(m, offRing0+offRpos, 0)
		}},
		// laps counted, but the reader's index moved elsewhere than 0
		{"rewind-elsewhere", func(m []byte, pos uint64) {
			put64(m, offRing0+offWpos, pos+16)
			put64(m, offRing0+offRpos, pos+16)
			put32(m, offRing0+offLaps, 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listenKindT(t, Lock, transports.Config{BufferSize: MinRing})
			mem := mapFileT(t, l.Endpoint().Files[0])
			a, d := connectT(t, l, 0) // ring 0: a writes, d reads
			a.SetDeadline(time.Now().Add(testTimeout))
			d.SetDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := a.Write([]byte("abc")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(d, make([]byte, 3)); err != nil {
				t.Fatal(err)
			}
			tt.corrupt(mem, d.rx.pos)
			_, err := d.Read(make([]byte, 100))
			wantOpErr(t, "Read", err, transports.ErrCorrupt)
		})
	}
	// A rewind between the reader's reservation and its commit: the ring
	// held the reserved bytes all along, and a writer rewinds an empty
	// ring only, so the commit refuses it.
	t.Run("rewind-under-reservation", func(t *testing.T) {
		l := listenKindT(t, Lock, transports.Config{BufferSize: MinRing})
		mem := mapFileT(t, l.Endpoint().Files[0])
		a, d := connectT(t, l, 0)
		a.SetDeadline(time.Now().Add(testTimeout))
		d.SetDeadline(time.Now().Add(testTimeout))
		if _, err := a.Write(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(d, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		// As the reader's reservation of those 100 bytes saw the ring,
		// then moved back to 0 with laps counted.
		put64(mem, offRing0+offWpos, 100)
		put64(mem, offRing0+offRpos, 0)
		put64(mem, offRing0+offUsed, 100)
		put32(mem, offRing0+offLaps, 1)
		err := d.commitRead(&d.rx, 100)
		if !errors.Is(err, transports.ErrCorrupt) {
			t.Fatalf("commit after a rewind under the reservation: %v, want ErrCorrupt", err)
		}
		if d.rx.pos != 100 || d.rx.laps != 0 {
			t.Errorf("the refused commit moved the reader to %d, laps %d", d.rx.pos, d.rx.laps)
		}
	})
}

// checkCorruptOps connects a pair of kind k over a MinRing channel, applies
// corrupt to the mapping, then runs the listener's Write, the dialer's
// Read, the dialer's Write and the listener's Read with short deadlines:
// those marked in mustFail must fail with ErrCorrupt, the others must not.
func checkCorruptOps(t *testing.T, k Kind, corrupt func(mem []byte), mustFail [4]bool) {
	t.Helper()
	l := listenKindT(t, k, transports.Config{BufferSize: MinRing})
	mem := mapFileT(t, l.Endpoint().Files[0])
	a, d := connectT(t, l, 0)
	corrupt(mem)
	for i, op := range []struct {
		name string
		call func() error
	}{
		{"listener Write", func() error { _, err := a.Write([]byte("abc")); return err }},
		{"dialer Read", func() error { _, err := d.Read(make([]byte, 100)); return err }},
		{"dialer Write", func() error { _, err := d.Write([]byte("abc")); return err }},
		{"listener Read", func() error { _, err := a.Read(make([]byte, 100)); return err }},
	} {
		a.SetDeadline(time.Now().Add(100 * time.Millisecond))
		d.SetDeadline(time.Now().Add(100 * time.Millisecond))
		err := op.call()
		switch {
		case mustFail[i]:
			wantOpErr(t, op.name, err, transports.ErrCorrupt)
		case errors.Is(err, transports.ErrCorrupt):
			t.Errorf("%s: %v on a ring that was not corrupted", op.name, err)
		}
	}
}

// FuzzRingHeader writes arbitrary bytes over a channel's header, before
// the peer attaches (stage even) or after both ends exchanged some bytes
// (stage odd), then runs Dial, Read and Write on both ends with short
// deadlines. Whatever the header holds, nothing may panic, hang, or fail
// with an error other than those a corrupt or closed ring explains.
func FuzzRingHeader(f *testing.F) {
	f.Add(uint8(0), uint16(offMagic), []byte("not-ipcb"))
	f.Add(uint8(1), uint16(offRing0+offUsed), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, stage uint8, off uint16, patch []byte) {
		o := int(off) % headerSize
		patch = patch[:min(len(patch), headerSize-o)]
		l := listenT(t, transports.Config{BufferSize: MinRing})
		ep := l.Endpoint()
		mem := mapFileT(t, ep.Files[0])
		if stage%2 == 0 {
			copy(mem[o:], patch)
		}
		dc, err := New(Lock).Dial(context.Background(), ep)
		if err != nil {
			if stage%2 == 1 || !(errors.Is(err, transports.ErrCorrupt) || errors.Is(err, transports.ErrBadEndpoint)) {
				t.Fatalf("Dial: %v", err)
			}
			return
		}
		defer dc.Close()
		ac, err := acceptTimeout(l, testTimeout)
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		defer ac.Close()
		conns := []net.Conn{ac, dc}
		if stage%2 == 1 {
			// Leave both rings part full, with indices away from zero.
			for i, c := range conns {
				peer := conns[1-i]
				c.SetDeadline(time.Now().Add(testTimeout))
				peer.SetDeadline(time.Now().Add(testTimeout))
				if _, err := c.Write(make([]byte, 100)); err != nil {
					t.Fatalf("Write: %v", err)
				}
				if _, err := io.ReadFull(peer, make([]byte, 30+i)); err != nil {
					t.Fatalf("Read: %v", err)
				}
			}
			copy(mem[o:], patch)
		}
		buf := make([]byte, 200)
		for _, c := range conns {
			for _, op := range []func() (int, error){
				func() (int, error) { return c.Write(buf[:150]) },
				func() (int, error) { return c.Read(buf) },
			} {
				c.SetDeadline(time.Now().Add(2 * time.Millisecond))
				n, err := op()
				if n < 0 || n > len(buf) {
					t.Fatalf("operation returned n = %d", n)
				}
				switch {
				case err == nil, err == io.EOF,
					errors.Is(err, transports.ErrCorrupt),
					errors.Is(err, os.ErrDeadlineExceeded),
					errors.Is(err, syscall.EPIPE):
				default:
					t.Fatalf("operation failed with %v", err)
				}
			}
		}
	})
}

// TestDialRefusesUnsealedMemfd hands Dial a memfd with a valid header that
// is not sealed against shrinking: its owner could truncate it under the
// mapping, so Dial must refuse it.
func TestDialRefusesUnsealedMemfd(t *testing.T) {
	fd, err := unix.MemfdCreate("not-ipcbench", unix.MFD_CLOEXEC)
	if err != nil {
		t.Skipf("memfd_create: %v", err)
	}
	mapping := os.NewFile(uintptr(fd), "unsealed")
	defer mapping.Close()
	size := mapSizeFor(MinRing)
	if err := mapping.Truncate(int64(size)); err != nil {
		t.Fatal(err)
	}
	initHeader(mapFileT(t, mapping), MinRing, flagMemfd, Lock)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	live0, live1 := os.NewFile(uintptr(pair[0]), "live0"), os.NewFile(uintptr(pair[1]), "live1")
	defer live0.Close()
	defer live1.Close()
	ep := transports.Endpoint{Transport: Lock.Name(), BufferSize: MinRing, Files: []*os.File{mapping, live1}}
	c, err := New(Lock).Dial(context.Background(), ep)
	if err == nil {
		c.Close()
		t.Fatal("Dial accepted an unsealed memfd")
	}
	wantOpErr(t, "Dial", err, transports.ErrBadEndpoint)
}

// TestAttachMappingSealedOnly: a channel fetched from a rendezvous
// (attachMapping's sealed) must be a file sealed against shrinking, whatever
// its header says, and is refused otherwise, unmapped, with an error
// wrapping ErrBadEndpoint; an inherited channel may be a file.
// F_SEAL_SHRINK alone suffices: a file that grows cannot fault the
// mapping, and F_SEAL_GROW without it does not protect it.
func TestAttachMappingSealedOnly(t *testing.T) {
	transporttest.NoLeaks(t)
	size := mapSizeFor(MinRing)
	memfd := func(seals int, flags uint32) *os.File {
		fd, err := unix.MemfdCreate(memfdName, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		if err != nil {
			t.Skipf("memfd_create: %v", err)
		}
		f := os.NewFile(uintptr(fd), "memfd")
		t.Cleanup(func() { f.Close() })
		if err := f.Truncate(int64(size)); err != nil {
			t.Fatal(err)
		}
		initHeader(mapFileT(t, f), MinRing, flags, Lock)
		if seals != 0 {
			if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
				t.Fatalf("F_ADD_SEALS %#x: %v", seals, err)
			}
		}
		return f
	}
	file := func(flags uint32) *os.File {
		fd, err := createFile(t.TempDir(), size)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "file")
		t.Cleanup(func() { f.Close() })
		initHeader(mapFileT(t, f), MinRing, flags, Lock)
		return f
	}
	tests := []struct {
		name   string
		f      *os.File
		sealed bool
		ok     bool
	}{
		{"file-inherited", file(flagFile), false, true},
		{"file-fetched", file(flagFile), true, false},
		{"file-claiming-memfd-fetched", file(flagMemfd), true, false},
		{"unsealed-memfd-claiming-file-fetched", memfd(0, flagFile), true, false},
		{"memfd-sealed-grow-only-fetched", memfd(unix.F_SEAL_GROW|unix.F_SEAL_SEAL, flagMemfd), true, false},
		{"memfd-sealed-shrink-only-fetched", memfd(unix.F_SEAL_SHRINK, flagMemfd), true, true},
		{"memfd-sealed-fetched", memfd(unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL, flagMemfd), true, true},
	}
	for _, tt := range tests {
		mem, _, err := attachMapping(tt.f, Lock, tt.sealed)
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.ok:
			unmap(mem)
		case err == nil:
			unmap(mem)
			t.Errorf("%s: accepted", tt.name)
		case !errors.Is(err, transports.ErrBadEndpoint) || !strings.Contains(err.Error(), "sealed against shrinking"):
			t.Errorf("%s: %v; want an error wrapping %v that says the file is not sealed against shrinking", tt.name, err, transports.ErrBadEndpoint)
		}
	}
}

// unansweredEndpoint returns an endpoint of a real channel whose liveness
// socket nobody answers on: a listener that handed the channel over and
// then stopped.
func unansweredEndpoint(t *testing.T) transports.Endpoint {
	t.Helper()
	ep, _ := unansweredEndpointLive(t)
	return ep
}

// unansweredEndpointLive is unansweredEndpoint, and also returns the
// listener's end of the liveness socket, closed at the end of the test.
func unansweredEndpointLive(t *testing.T) (transports.Endpoint, *os.File) {
	t.Helper()
	ch, err := newChannel(Lock, 0, MinRing, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ch.release)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	live0, live1 := os.NewFile(uintptr(pair[0]), "live0"), os.NewFile(uintptr(pair[1]), "live1")
	t.Cleanup(func() { live0.Close(); live1.Close() })
	return transports.Endpoint{Transport: Lock.Name(), BufferSize: MinRing, Files: []*os.File{ch.mapFile, live1}}, live0
}

// dialLockAsync dials ep (shm-lock) without a deadline on a goroutine and
// returns where the dial's error arrives; a connection it made is closed.
func dialLockAsync(ep transports.Endpoint) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := New(Lock).Dial(context.Background(), ep)
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	return done
}

// TestDialListenerDiesWithHelloUnread: a listener that dies after it
// handed over a channel, with the dialer's hello unread in its socket,
// resets the connection; the dial fails with an error wrapping
// ErrPeerGone (as when the listener closed it after reading the hello),
// at once rather than after answerTimeout.
func TestDialListenerDiesWithHelloUnread(t *testing.T) {
	ep, live0 := unansweredEndpointLive(t)
	done := dialLockAsync(ep)
	// The hello makes the listener's end readable; close it unread.
	rc, err := live0.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var perr error
	var n int
	if err := rc.Control(func(fd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, perr = unix.Poll(pfd, int(testTimeout.Milliseconds()))
			if perr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if perr != nil || n == 0 {
		t.Fatalf("no hello arrived within %v (poll: %v)", testTimeout, perr)
	}
	live0.Close()
	select {
	case err := <-done:
		if !errors.Is(err, transports.ErrPeerGone) || !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("Dial to a listener that died with the hello unread: %v; want ErrPeerGone and ECONNRESET", err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("Dial still waits %v after the listener's end closed", testTimeout)
	}
}

// TestDialUnansweredHello: a dial whose hello the listener never answers
// fails with ctx's own error at ctx's deadline, every time (the socket's
// deadline may fire before ctx's timer), and without a deadline after
// answerTimeout, saying the listener did not answer, instead of waiting
// for ever.
func TestDialUnansweredHello(t *testing.T) {
	for i := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		c, err := New(Lock).Dial(ctx, unansweredEndpoint(t))
		cancel()
		if err == nil {
			c.Close()
			t.Fatal("Dial succeeded without an answer")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial %d: %v; want context.DeadlineExceeded", i, err)
		}
	}
	old := answerTimeout
	answerTimeout = 100 * time.Millisecond
	t.Cleanup(func() { answerTimeout = old })
	ep := unansweredEndpoint(t)
	done := dialLockAsync(ep)
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "none within 100ms") {
			t.Errorf("Dial without a deadline: %v; want os.ErrDeadlineExceeded saying no answer came within 100ms", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Dial without a deadline still waits for an answer that never comes")
	}
}
