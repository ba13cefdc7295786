package shm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// waits are the wait strategies, each with the options that select it.
var waits = []struct {
	name string
	opts map[string]string
}{
	{WaitSpin, map[string]string{OptionWait: WaitSpin}},
	{WaitAdaptive, nil},
	{WaitFutex, map[string]string{OptionWait: WaitFutex}},
	{"adaptive-spin_ns=0", map[string]string{OptionWait: WaitAdaptive, OptionSpinNS: "0"}},
}

// kindWait is one kind with one wait strategy, named kind/strategy.
type kindWait struct {
	name string
	kind Kind
	opts map[string]string
}

// kindWaits returns every kind with every wait strategy.
func kindWaits() []kindWait {
	var out []kindWait
	for _, k := range []Kind{Ring, Lock} {
		for _, w := range waits {
			out = append(out, kindWait{k.Name() + "/" + w.name, k, w.opts})
		}
	}
	return out
}

// TestRingNettest runs golang.org/x/net/nettest.TestConn over both kinds
// with each wait strategy, and a small ring so that writes wrap and block.
func TestRingNettest(t *testing.T) {
	for _, tc := range kindWaits() {
		t.Run(tc.name, func(t *testing.T) {
			nettest.TestConn(t, transporttest.MakePipe(New(tc.kind), transports.Config{BufferSize: MinRing, Options: tc.opts}))
		})
	}
}

// TestRingStream moves messages much larger than a small ring through it in
// both directions at once, over both kinds with each wait strategy, every
// byte checked.
func TestRingStream(t *testing.T) {
	for _, tc := range kindWaits() {
		t.Run(tc.name, func(t *testing.T) {
			a, d := connectT(t, listenKindT(t, tc.kind, transports.Config{BufferSize: MinRing, Options: tc.opts}), 0)
			const total = 8 << 20
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for _, pair := range [][2]*Conn{{a, d}, {d, a}} {
				src, dst := pair[0], pair[1]
				wg.Add(2)
				go func() {
					defer wg.Done()
					b := make([]byte, 3*MinRing+17)
					for sent := 0; sent < total; {
						n := min(len(b), total-sent)
						fillPattern(b[:n], sent)
						if _, err := src.Write(b[:n]); err != nil {
							errs <- err
							return
						}
						sent += n
					}
				}()
				go func() {
					defer wg.Done()
					b := make([]byte, 5000)
					for got := 0; got < total; {
						n, err := dst.Read(b)
						if err != nil {
							errs <- err
							return
						}
						if at, ok := checkPattern(b[:n], got); !ok {
							errs <- errors.New("byte " + itoa(at) + " is wrong")
							return
						}
						got += n
					}
				}()
			}
			a.SetDeadline(time.Now().Add(testTimeout))
			d.SetDeadline(time.Now().Add(testTimeout))
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// TestRingOptions checks option validation and what connections report.
func TestRingOptions(t *testing.T) {
	for _, opts := range []map[string]string{
		{OptionWait: "sometimes"},
		{OptionSpinNS: "-1"},
		{OptionSpinNS: "2000000000"},
		{OptionSpinNS: "soon"},
		{"lock": "futex"},
	} {
		if _, err := New(Ring).Listen(context.Background(), transports.Config{Options: opts}); !errors.Is(err, transports.ErrBadOption) {
			t.Errorf("Listen with %v: %v, want ErrBadOption", opts, err)
		}
	}
	for _, opts := range []map[string]string{
		{OptionWait: "sometimes"},
		{OptionSpinNS: "-1"},
		{OptionZeroCopy: "off"}, // shm-lock lends no bytes in place
	} {
		if l, err := New(Lock).Listen(context.Background(), transports.Config{Options: opts}); !errors.Is(err, transports.ErrBadOption) {
			if err == nil {
				l.Close()
			}
			t.Errorf("shm-lock Listen with %v: %v, want ErrBadOption", opts, err)
		}
	}
	for _, k := range []Kind{Ring, Lock} {
		lock := map[Kind]string{Ring: "none", Lock: "futex-mutex"}[k]
		for _, tt := range []struct {
			opts       map[string]string
			wait, spin string
		}{
			{nil, WaitAdaptive, "20000"},
			{map[string]string{OptionSpinNS: "5000"}, WaitAdaptive, "5000"},
			{map[string]string{OptionWait: WaitSpin}, WaitSpin, ""},
			{map[string]string{OptionWait: WaitFutex}, WaitFutex, ""},
		} {
			a, d := connectT(t, listenKindT(t, k, transports.Config{Options: tt.opts}), 0)
			for _, c := range []*Conn{a, d} {
				got := c.EffectiveOptions()
				if got[OptionWait] != tt.wait || got[OptionSpinNS] != tt.spin || got["lock"] != lock || got["ring_bytes"] != "1048576" {
					t.Errorf("%s options %v: effective %v", k.Name(), tt.opts, got)
				}
			}
		}
	}
}

// TestRingRefusesLockMapping checks that neither kind attaches to the
// other's mapping.
func TestRingRefusesLockMapping(t *testing.T) {
	for _, k := range []Kind{Lock, Ring} {
		l := listenKindT(t, k, transports.Config{})
		ep := l.Endpoint()
		ep.Transport = (1 - k).Name()
		_, err := New(1-k).Dial(context.Background(), ep)
		if !errors.Is(err, transports.ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(k.Name()+" channel")) {
			t.Errorf("%s dialing a %s channel: %v; want ErrCorrupt naming the kind", (1 - k).Name(), k.Name(), err)
		}
	}
}

// TestRingCorruptCountersFull checks that a producer whose cached tail
// shows too little room reads the tail and reports a bad one.
func TestRingCorruptCountersFull(t *testing.T) {
	l := listenKindT(t, Ring, transports.Config{BufferSize: MinRing})
	mem := mapFileT(t, l.Endpoint().Files[0])
	a, _ := connectT(t, l, 0)
	a.SetDeadline(time.Now().Add(time.Second))
	if _, err := a.Write(make([]byte, MinRing)); err != nil { // fill the ring
		t.Fatal(err)
	}
	put64(mem, offRing0+offRpos, 1<<62)
	_, err := a.Write([]byte("x"))
	wantOpErr(t, "Write to a full ring with a bad tail", err, transports.ErrCorrupt)
}

// TestRingCorruptCounters writes impossible counters into a connected
// ring: the side that reads them must fail with ErrCorrupt, never panic or
// touch memory outside the mapping.
func TestRingCorruptCounters(t *testing.T) {
	const ring0, ring1 = offRing0, offRing1 // ring 0: listener writes, dialer reads
	tests := []struct {
		name                                         string
		corrupt                                      func(mem []byte)
		listenWrite, dialRead, dialWrite, listenRead bool
	}{
		{"head-beyond-one-ring", func(m []byte) { put64(m, ring0+offWpos, MinRing+1) }, true, true, false, false},
		{"head-max", func(m []byte) { put64(m, ring1+offWpos, math.MaxUint64) }, false, false, true, true},
		// A producer reads the tail only when the tail it cached shows too
		// little room, so a bad tail is caught by the consumer first.
		{"tail-ahead-of-head", func(m []byte) { put64(m, ring0+offRpos, 5) }, false, true, false, false},
		{"tail-far-from-head", func(m []byte) { put64(m, ring1+offRpos, 1<<62) }, false, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCorruptOps(t, Ring, tt.corrupt, [4]bool{tt.listenWrite, tt.dialRead, tt.dialWrite, tt.listenRead})
		})
	}
}

// FuzzRingCounters sets a connected shm-ring's control words to arbitrary
// values and runs Read and Write on both ends with short deadlines: nothing
// may panic or hang, and every error must be one a corrupt, closed or
// timed-out ring explains.
func FuzzRingCounters(f *testing.F) {
	f.Add(uint64(0), uint64(0), uint64(0), uint64(0), uint32(0), uint32(0))
	f.Add(uint64(MinRing), uint64(0), uint64(3), uint64(1), uint32(1), uint32(1))
	f.Add(uint64(math.MaxUint64), uint64(1), uint64(MinRing+1), uint64(math.MaxUint64), uint32(7), uint32(0))
	f.Fuzz(func(t *testing.T, w0, r0, w1, r1 uint64, flags0, flags1 uint32) {
		l := listenKindT(t, Ring, transports.Config{BufferSize: MinRing})
		mem := mapFileT(t, l.Endpoint().Files[0])
		a, d := connectT(t, l, 0)
		put64(mem, offRing0+offWpos, w0)
		put64(mem, offRing0+offRpos, r0)
		put64(mem, offRing1+offWpos, w1)
		put64(mem, offRing1+offRpos, r1)
		put32(mem, offRing0+offReaderWaiting, flags0)
		put32(mem, offRing1+offWriterWaiting, flags1)
		put32(mem, offRing0+offWriterClosed, flags0&1)
		put64(mem, offRing0+offSkip, r1) // skip words from the other values
		put64(mem, offRing1+offSkip, w0)
		buf := make([]byte, 3*MinRing)
		for _, c := range []*Conn{a, d} {
			c.SetDeadline(time.Now().Add(20 * time.Millisecond))
			_, werr := c.Write(buf)
			_, rerr := c.Read(buf)
			for _, err := range []error{werr, rerr} {
				if err != nil && err != io.EOF && !errors.Is(err, transports.ErrCorrupt) &&
					!errors.Is(err, os.ErrDeadlineExceeded) && !isEPIPE(err) {
					t.Fatalf("unexplained error: %v", err)
				}
			}
		}
	})
}

// TestRingZeroAllocs checks that Read and Write allocate nothing with any
// wait strategy, whether they find the ring ready or have to wait.
func TestRingZeroAllocs(t *testing.T) {
	for _, w := range waits {
		t.Run(w.name, func(t *testing.T) {
			a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: MinRing, Options: w.opts}), 0)
			pingPongAllocs(t, a, d)
		})
	}
}

// isEPIPE reports whether err is the broken-pipe error of a ring whose
// reader is gone (or that this side closed for writing).
func isEPIPE(err error) bool { return errors.Is(err, syscall.EPIPE) }

// TestRingZeroCopy streams through a small ring with Reserve/Commit on one
// side and Peek/Release on the other (and the copying calls on the way
// back), every byte checked, and checks the misuse errors.
func TestRingZeroCopy(t *testing.T) {
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: MinRing}), 0)
	a.SetDeadline(time.Now().Add(testTimeout))
	d.SetDeadline(time.Now().Add(testTimeout))
	const total = 4 << 20
	errc := make(chan error, 1)
	go func() {
		for sent := 0; sent < total; {
			buf, err := a.Reserve(1000)
			if err != nil {
				errc <- err
				return
			}
			n := min(len(buf), total-sent)
			fillPattern(buf[:n], sent)
			if err := a.Commit(n); err != nil {
				errc <- err
				return
			}
			sent += n
		}
		errc <- a.CloseWrite()
	}()
	got := 0
	for {
		buf, err := d.Peek()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Peek after %d bytes: %v", got, err)
		}
		if at, ok := checkPattern(buf, got); !ok {
			t.Fatalf("byte %d is wrong", at)
		}
		k := max(1, len(buf)/2) // release in parts too
		if err := d.Release(k); err != nil {
			t.Fatal(err)
		}
		got += k
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got != total {
		t.Fatalf("received %d bytes, sent %d", got, total)
	}
	if err := d.Release(1); !errors.Is(err, ErrBadCommit) {
		t.Errorf("Release beyond the peeked region: %v", err)
	}
	if err := d.Commit(MinRing + 1); !errors.Is(err, ErrBadCommit) {
		t.Errorf("Commit without a reservation: %v", err)
	}
	la, _ := pairT(t, transports.Config{BufferSize: MinRing})
	if _, err := la.Reserve(1); !errors.Is(err, ErrNotRing) {
		t.Errorf("shm-lock Reserve: %v, want ErrNotRing", err)
	}
}

// BenchmarkRingStream moves 64 KiB and 1 MiB messages one way between two
// goroutines through a shm-ring of the default size, with Write/Read (a
// copy in, a copy out into a 64 KiB buffer) and with Reserve/Commit and
// Peek/Release (the payload filled and checked in place). Compare the two
// with -benchmem: the difference is what the zero-copy interface saves.
// 1 MiB messages are larger than the ring; run it pinned to one CPU
// (taskset -c 0 with GOMAXPROCS=2) as well as unpinned to see how the two
// sides share it.
func BenchmarkRingStream(b *testing.B) {
	for _, msg := range []int{64 << 10, 1 << 20} {
		for _, mode := range []string{"copy", "zerocopy"} {
			b.Run(mode+"/"+itoa(msg>>10)+"KiB", func(b *testing.B) { benchRingStream(b, mode, msg) })
		}
	}
}

// benchRingStream is one case of BenchmarkRingStream.
func benchRingStream(b *testing.B, mode string, msg int) {
	a, d := connectT(b, listenKindT(b, Ring, transports.Config{}), 0)
	b.SetBytes(int64(msg))
	done := make(chan error, 1)
	go func() {
		src := make([]byte, msg)
		for range b.N {
			if mode == "copy" {
				if _, err := a.Write(src); err != nil {
					done <- err
					return
				}
				continue
			}
			for left := msg; left > 0; {
				buf, err := a.Reserve(left)
				if err != nil {
					done <- err
					return
				}
				buf[0] = 1
				if err := a.Commit(len(buf)); err != nil {
					done <- err
					return
				}
				left -= len(buf)
			}
		}
		done <- nil
	}()
	dst := make([]byte, min(msg, 64<<10))
	b.ResetTimer()
	for i := 0; i < b.N*msg; {
		if mode == "copy" {
			n, err := d.Read(dst)
			if err != nil {
				b.Fatal(err)
			}
			i += n
			continue
		}
		buf, err := d.Peek()
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Release(len(buf)); err != nil {
			b.Fatal(err)
		}
		i += len(buf)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// TestRingTailPublishedLazily checks when a shm-ring reader publishes its
// tail: not after every read, but once it has taken a quarter of the ring,
// and always before it waits for data; and that a writer waiting for space
// is released by either.
func TestRingTailPublishedLazily(t *testing.T) {
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: MinRing}), 0)
	published := func() uint64 { return d.rx.ctl.rpos.Load() }
	quarter := MinRing / tailPublishFraction
	full := make([]byte, MinRing)
	if _, err := a.Write(full); err != nil {
		t.Fatal(err)
	}
	// The ring is full: a further write waits for space.
	wrote := make(chan error, 1)
	go func() {
		_, err := a.Write([]byte{1})
		wrote <- err
	}()
	buf := make([]byte, MinRing)
	if _, err := io.ReadFull(d, buf[:quarter-1]); err != nil {
		t.Fatal(err)
	}
	if got := published(); got != 0 {
		t.Fatalf("after taking %d bytes the published tail is %d, want 0 (not yet a quarter ring)", quarter-1, got)
	}
	if _, err := io.ReadFull(d, buf[:1]); err != nil {
		t.Fatal(err)
	}
	if got := published(); got != uint64(quarter) {
		t.Fatalf("after taking a quarter ring the published tail is %d, want %d", got, quarter)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("the waiting write: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the waiting write was not released by the published tail")
	}
	// Less than a quarter more: nothing new published.
	if _, err := io.ReadFull(d, buf[:quarter-1]); err != nil {
		t.Fatal(err)
	}
	if got := published(); got != uint64(quarter) {
		t.Fatalf("published tail moved to %d, want it left at %d", got, quarter)
	}

	// A read that has to wait publishes first.
	a, d = connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: MinRing}), 0)
	if _, err := a.Write(full[:100]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(d, buf[:100]); err != nil {
		t.Fatal(err)
	}
	if got := published(); got != 0 {
		t.Fatalf("after taking 100 bytes the published tail is %d, want 0", got)
	}
	d.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := d.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read on an empty ring = %v, want a deadline error", err)
	}
	if got := published(); got != 100 {
		t.Fatalf("after waiting the published tail is %d, want 100 (everything taken)", got)
	}
}

// TestRingTailPublishedBeforeWriteWaits: two sides that each read a little
// (less than a quarter ring, so the tail is not yet published) and then
// write more than their ring holds must not wait for each other: a Write
// that waits for space publishes its side's incoming tail first, as a
// Read does. Before, each writer waited for space its reader had taken.
func TestRingTailPublishedBeforeWriteWaits(t *testing.T) {
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: MinRing}), 0)
	// A bound on a hang, not a timing: the exchange needs no waiting.
	a.SetDeadline(time.Now().Add(20 * time.Second))
	d.SetDeadline(time.Now().Add(20 * time.Second))
	const n = MinRing + 512
	aw := make(chan error, 1)
	go func() { _, err := a.Write(make([]byte, n)); aw <- err }()
	buf := make([]byte, n)
	if _, err := io.ReadFull(d, buf[:512]); err != nil {
		t.Fatal(err)
	}
	dw := make(chan error, 1)
	go func() { _, err := d.Write(make([]byte, n)); dw <- err }()
	if err := <-aw; err != nil {
		t.Fatalf("a's Write, waiting for the 512 bytes d took before it wrote: %v", err)
	}
	if _, err := io.ReadFull(a, buf); err != nil {
		t.Fatal(err)
	}
	if err := <-dw; err != nil {
		t.Fatalf("d's Write: %v", err)
	}
	if _, err := io.ReadFull(d, buf[512:]); err != nil {
		t.Fatal(err)
	}
}

// TestLockWaitOption checks that shm-lock's lone reader waits as its wait
// option says: with the default (adaptive) it polls for the spin budget
// before it sleeps, and a Read whose data comes only once it sleeps
// records the spin as lost; with wait=futex it sleeps at once and records
// nothing. Both get every byte.
func TestLockWaitOption(t *testing.T) {
	for _, tt := range []struct {
		opts  map[string]string
		spins bool
	}{
		{nil, true},
		{map[string]string{OptionWait: WaitFutex}, false},
	} {
		// Both ends are in this process: with one processor a waiter is
		// never alone in it (mayWaitSolo), and parks with the poller,
		// whose record this is not.
		if runtime.GOMAXPROCS(0) < 2 {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
		}
		a, d := connectT(t, listenKindT(t, Lock, transports.Config{Options: tt.opts}), 0)
		d.SetDeadline(time.Now().Add(testTimeout))
		go func() {
			// Write once the reader announced its futex sleep: after
			// its spin, if it spins.
			for d.rx.ctl.readerWaiting.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			a.Write([]byte("late"))
		}()
		b := make([]byte, 8)
		n, err := d.Read(b)
		if err != nil || string(b[:n]) != "late" {
			t.Fatalf("options %v: Read = %q, %v", tt.opts, b[:n], err)
		}
		if lost := d.rspin.losses > 0 || d.rspin.backoff > 0; lost != tt.spins {
			t.Errorf("options %v: the reader's spin record %+v, want a lost spin: %v", tt.opts, d.rspin, tt.spins)
		}
	}
}

// TestLockWaitSpinsOncePerCall checks that a lone shm-lock reader polls
// for one spin budget per Read, however many futex sleeps (each at most
// dataWaitSlice) the Read then takes: a Read that waited through five of
// them records one lost spin, not five, which would have started a
// back-off of sleeping at once (spinLossLimit is 4).
func TestLockWaitSpinsOncePerCall(t *testing.T) {
	if testing.Short() {
		t.Skip("waits through five futex sleeps of dataWaitSlice")
	}
	if runtime.GOMAXPROCS(0) < 2 { // the reader must wait alone: see mayWaitSolo
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	a, d := connectT(t, listenKindT(t, Lock, transports.Config{}), 0)
	d.SetDeadline(time.Now().Add(testTimeout))
	go func() {
		time.Sleep(4*dataWaitSlice + dataWaitSlice/2)
		a.Write([]byte("late"))
	}()
	b := make([]byte, 8)
	if n, err := d.Read(b); err != nil || string(b[:n]) != "late" {
		t.Fatalf("Read = %q, %v", b[:n], err)
	}
	if d.rspin.losses != 1 || d.rspin.backoff != 0 {
		t.Errorf("after one Read through several sleeps, the spin record is %+v, want one loss and no back-off", d.rspin)
	}
}
