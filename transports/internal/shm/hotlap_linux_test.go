package shm

import (
	"errors"
	"io"
	"math/rand"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
)

// exchangeT runs an exchange of 1000-byte messages from w to r, each read
// at once and the tail published (as a reader that waits for the next
// message does), until w's head is hotLap bytes into its lap: w's next
// small Write goes back to the ring's start. *sent and *recvd count the
// pattern's bytes.
func exchangeT(t *testing.T, w, r *Conn, sent, recvd *int) {
	t.Helper()
	msg, got := make([]byte, 1000), make([]byte, 1000)
	for w.tx.pos&w.tx.mask < hotLap {
		fillPattern(msg, *sent)
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		*sent += len(msg)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatal(err)
		}
		if at, ok := checkPattern(got, *recvd); !ok {
			t.Fatalf("byte %d is wrong", at)
		}
		*recvd += len(got)
		r.publishTail()
	}
}

// TestHotLapKeepsRingSize checks that a hot skip leaves the writer the
// whole ring: a reader that stops reading right after it still has a
// ring's worth of Writes buffered behind it, and then takes them all
// across the skip, every byte in place.
func TestHotLapKeepsRingSize(t *testing.T) {
	for _, ring := range []int{16 << 10, 64 << 10, DefaultRing} {
		a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: ring}), 0)
		a.SetDeadline(time.Now().Add(testTimeout))
		d.SetDeadline(time.Now().Add(testTimeout))
		sent, recvd := 0, 0
		exchangeT(t, a, d, &sent, &recvd)
		// The reader is idle now: the writer skips, then fills the
		// whole ring.
		lap := a.tx.pos &^ a.tx.mask
		msg := make([]byte, 1000)
		for buffered := 0; buffered+len(msg) <= ring; buffered += len(msg) {
			fillPattern(msg, sent)
			a.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := a.Write(msg); err != nil {
				t.Fatalf("ring %d: with the reader idle after a hot skip, the writer stopped after %d bytes: %v", ring, buffered, err)
			}
			sent += len(msg)
			if buffered == 0 && a.tx.pos != lap+uint64(ring)+uint64(len(msg)) {
				t.Fatalf("ring %d: no hot skip: head %d, want %d", ring, a.tx.pos, lap+uint64(ring)+uint64(len(msg)))
			}
		}
		got := make([]byte, 4096)
		for recvd < sent {
			n, err := d.Read(got)
			if err != nil {
				t.Fatalf("ring %d: reading the buffered bytes at %d of %d: %v", ring, recvd, sent, err)
			}
			if at, ok := checkPattern(got[:n], recvd); !ok {
				t.Fatalf("ring %d: byte %d is wrong", ring, at)
			}
			recvd += n
		}
	}
}

// TestHotLapDuplexBursts has both sides send a burst larger than the hot
// lap after an exchange, and only then read the other's: each must find
// the ring's size of room, not what the hot lap used.
func TestHotLapDuplexBursts(t *testing.T) {
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{}), 0)
	var s1, r1, s2, r2 int
	exchangeT(t, a, d, &s1, &r1)
	exchangeT(t, d, a, &s2, &r2)
	dl := time.Now().Add(testTimeout)
	a.SetDeadline(dl)
	d.SetDeadline(dl)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	const burst = 64
	for i, c := range []*Conn{a, d} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 1000)
			for range burst {
				if _, err := c.Write(msg); err != nil {
					errs[i] = err
					return
				}
			}
			_, errs[i] = io.ReadFull(c, make([]byte, burst*len(msg)))
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("%d KB bursts both ways through 1 MiB rings after hot skips: %v / %v", burst, errs[0], errs[1])
	}
}

// TestHotLapAfterClose writes, with the head past hotLap, after Close and
// after CloseWrite: no skip, no crash, the head left where it was.
func TestHotLapAfterClose(t *testing.T) {
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: 64 << 10}), 0)
	a.SetDeadline(time.Now().Add(testTimeout))
	d.SetDeadline(time.Now().Add(testTimeout))
	msg := make([]byte, 1000)
	for a.tx.pos&a.tx.mask < hotLap {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(d, msg); err != nil {
			t.Fatal(err)
		}
		d.publishTail()
	}
	if err := a.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	head := a.tx.ctl.wpos.Load()
	if _, err := a.Write(msg); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write after CloseWrite: %v, want EPIPE", err)
	}
	if got := a.tx.ctl.wpos.Load(); got != head {
		t.Fatalf("Write after CloseWrite moved the head from %d to %d", head, got)
	}
	if _, err := d.Read(msg); err != io.EOF {
		t.Fatalf("reader after CloseWrite: %v, want EOF", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(msg); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// TestHeadPastRingOnlyAtSkip checks the consumer's validation: a head
// more than one ring ahead is accepted only from a tail standing at the
// skip word, and then only up to one ring past the lap's end.
func TestHeadPastRingOnlyAtSkip(t *testing.T) {
	const ring = 64 << 10
	for _, tc := range []struct {
		name       string
		skip, head uint64 // with the consumer's tail at 1000
		corrupt    bool
	}{
		{"at-skip-full-ring", 1000, ring + ring, false},
		{"at-skip-past-ring", 1000, ring + ring + 1, true},
		{"skip-elsewhere", 900, ring + 1000 + 10, true},
		{"no-skip", 0, ring + 1000 + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: ring}), 0)
			r := &d.rx
			r.pos, r.pub = 1000, 1000
			r.ctl.rpos.Store(1000)
			r.ctl.skip.Store(tc.skip)
			r.ctl.wpos.Store(tc.head)
			n, err := r.avail()
			if tc.corrupt {
				if !errors.Is(err, transports.ErrCorrupt) {
					t.Fatalf("avail = %d, %v; want ErrCorrupt", n, err)
				}
				return
			}
			if err != nil || n != ring || r.pos != ring {
				t.Fatalf("avail = %d, %v with the tail moved to %d; want %d bytes from %d", n, err, r.pos, ring, ring)
			}
		})
	}
}

// TestRingRandomLaps pushes a random mix of Write sizes (mostly small,
// some several rings long) through rings of several sizes to a reader
// that lags at random, by Read and by Peek/Release, and checks every
// byte: hot skips, short laps and wraps in every order.
func TestRingRandomLaps(t *testing.T) {
	total := 4 << 20
	if os.Getenv("IPCBENCH_STRESS") != "" {
		total = 64 << 20
	}
	for _, ring := range []int{8 << 10, 16 << 10, 32 << 10, DefaultRing} {
		for _, peek := range []bool{false, true} {
			a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: ring}), 0)
			a.SetDeadline(time.Now().Add(4 * testTimeout))
			d.SetDeadline(time.Now().Add(4 * testTimeout))
			done := make(chan error, 1)
			go func() {
				rng := rand.New(rand.NewSource(int64(ring)))
				b := make([]byte, 3*ring)
				for sent := 0; sent < total; {
					n := 1 + rng.Intn(hotWrite+hotWrite/16)
					if rng.Intn(50) == 0 {
						n = rng.Intn(3 * ring)
					}
					n = min(n, total-sent)
					fillPattern(b[:n], sent)
					if _, err := a.Write(b[:n]); err != nil {
						done <- err
						return
					}
					sent += n
				}
				done <- nil
			}()
			rng := rand.New(rand.NewSource(7))
			buf := make([]byte, 8192)
			skips, last := 0, uint64(0)
			for recvd := 0; recvd < total; {
				if rng.Intn(200) == 0 {
					time.Sleep(time.Duration(rng.Intn(200)) * time.Microsecond)
				}
				var p []byte
				if peek {
					q, err := d.Peek()
					if err != nil {
						t.Fatalf("ring %d: Peek at %d: %v", ring, recvd, err)
					}
					p = q[:min(len(q), 1+rng.Intn(5000))]
				} else {
					n, err := d.Read(buf[:1+rng.Intn(len(buf))])
					if err != nil {
						t.Fatalf("ring %d: Read at %d: %v", ring, recvd, err)
					}
					p = buf[:n]
				}
				if at, ok := checkPattern(p, recvd); !ok {
					t.Fatalf("ring %d, peek %v: byte %d is wrong", ring, peek, at)
				}
				recvd += len(p)
				if peek {
					if err := d.Release(len(p)); err != nil {
						t.Fatal(err)
					}
				}
				if s := d.rx.ctl.skip.Load(); s != last {
					last = s
					skips++
				}
			}
			if err := <-done; err != nil {
				t.Fatalf("ring %d: writer: %v", ring, err)
			}
			t.Logf("ring %d, peek %v: %d bytes, %d skips seen", ring, peek, total, skips)
		}
	}
}

// TestParkedReadDeadline has both ends of a connection Read at once, so
// that one parks with the poller, each with a deadline farther away than
// one futex sleep (dataWaitSlice): both must end with the deadline. A
// parked waiter used to wait for its ring only, and never returned.
func TestParkedReadDeadline(t *testing.T) {
	for _, k := range []Kind{Ring, Lock} {
		t.Run(k.Name(), func(t *testing.T) {
			a, b := connectT(t, listenKindT(t, k, transports.Config{}), 0)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, c := range []*Conn{a, b} {
				c.SetReadDeadline(time.Now().Add(dataWaitSlice + 100*time.Millisecond))
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = c.Read(make([]byte, 10))
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(testTimeout):
				t.Fatalf("Reads with a deadline %v away still waiting after %v", dataWaitSlice+100*time.Millisecond, testTimeout)
			}
			for i, err := range errs {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("Read %d: %v, want os.ErrDeadlineExceeded", i, err)
				}
			}
		})
	}
}

// TestHotLapWaitsForLaggingReader has the reader one message behind when
// the head passes hotLap, and then stop: the writer must not skip (the
// new lap would start with the old lap's unread message still counted
// against it) and must go on to fill the whole ring.
func TestHotLapWaitsForLaggingReader(t *testing.T) {
	const ring = 64 << 10
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: ring}), 0)
	d.SetDeadline(time.Now().Add(testTimeout))
	msg, got := make([]byte, 1000), make([]byte, 1000)
	sent, recvd := 0, 0
	write := func() error {
		fillPattern(msg, sent)
		a.SetWriteDeadline(time.Now().Add(time.Second))
		_, err := a.Write(msg)
		if err == nil {
			sent += len(msg)
		}
		return err
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	for a.tx.pos&a.tx.mask < hotLap { // one message always unread
		if err := write(); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(d, got); err != nil {
			t.Fatal(err)
		}
		recvd += len(got)
		d.publishTail()
	}
	for sent-recvd+len(msg) <= ring { // the reader has stopped
		if err := write(); err != nil {
			t.Fatalf("the writer stopped with %d bytes buffered in a %d-byte ring: %v (head %d, skip word %d)",
				sent-recvd, ring, err, a.tx.pos, a.tx.ctl.skip.Load())
		}
	}
	buf := make([]byte, 4096)
	for recvd < sent {
		n, err := d.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if at, ok := checkPattern(buf[:n], recvd); !ok {
			t.Fatalf("byte %d is wrong", at)
		}
		recvd += n
	}
}

// TestShortLapAfterCloseWrite checks that a large Write after CloseWrite,
// which would go in short laps (the reader last waited on this CPU),
// leaves the head where it was: the reader trusts the head it finds once
// writerClosed is set.
func TestShortLapAfterCloseWrite(t *testing.T) {
	saved := cpuNow
	t.Cleanup(func() { cpuNow = saved })
	cpuNow = func() uint32 { return 1 }
	const ring = 4 * shortLap
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: ring}), 0)
	a.SetDeadline(time.Now().Add(testTimeout))
	d.SetDeadline(time.Now().Add(testTimeout))
	b := make([]byte, shortLap+1000)
	if _, err := a.Write(b); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(d, b); err != nil {
		t.Fatal(err)
	}
	d.publishTail()
	d.tx.ctl.writerCPU.Store(1) // the reader waited on this CPU: short laps
	if lap := a.lapFor(ring); lap != shortLap {
		t.Fatalf("lapFor = %d before CloseWrite, want short laps (%d)", lap, shortLap)
	}
	if err := a.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	head := a.tx.ctl.wpos.Load()
	if _, err := a.Write(make([]byte, ring)); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write after CloseWrite: %v, want EPIPE", err)
	}
	if got := a.tx.ctl.wpos.Load(); got != head {
		t.Fatalf("Write after CloseWrite moved the head from %d to %d", head, got)
	}
}

// TestLockHotLaps checks shm-lock's hot laps (rewindLock): in an exchange
// of small messages the writer goes back to the ring's start whenever the
// reader took everything, so the indices stay within the first hotLap
// bytes and a message; with the reader behind (bursts of up to six
// messages before it reads), the writer goes on where it is. Every byte
// arrives in place across the rewinds, and the reader's index follows.
func TestLockHotLaps(t *testing.T) {
	a, d := connectT(t, listenKindT(t, Lock, transports.Config{BufferSize: 64 << 10}), 0)
	a.SetDeadline(time.Now().Add(testTimeout))
	d.SetDeadline(time.Now().Add(testTimeout))
	rng := rand.New(rand.NewSource(1))
	msg, got := make([]byte, 1000), make([]byte, 6000)
	sent, recvd, maxPos := 0, 0, uint64(0)
	for range 2000 {
		burst := 1 + rng.Intn(6)
		if rng.Intn(4) != 0 {
			burst = 1 // mostly an exchange, as a reader that waits for each message
		}
		for range burst {
			fillPattern(msg, sent)
			if _, err := a.Write(msg); err != nil {
				t.Fatal(err)
			}
			sent += len(msg)
			maxPos = max(maxPos, a.tx.pos)
		}
		for recvd < sent {
			n, err := d.Read(got[:min(len(got), sent-recvd)])
			if err != nil {
				t.Fatalf("reading at byte %d of %d: %v", recvd, sent, err)
			}
			if at, ok := checkPattern(got[:n], recvd); !ok {
				t.Fatalf("byte %d is wrong", at)
			}
			recvd += n
		}
	}
	laps := a.tx.ctl.laps.Load()
	if laps == 0 {
		t.Fatalf("the writer never went back to the ring's start (%d bytes through a 64 KiB ring)", sent)
	}
	if maxPos >= hotLap+6*uint64(len(msg)) {
		t.Errorf("the writer's index reached %d; with rewinds it stays below hotLap (%d) plus a burst", maxPos, hotLap)
	}
	if d.rx.laps != laps || d.rx.pos != a.tx.pos {
		t.Errorf("reader at %d after %d rewinds, writer at %d after %d", d.rx.pos, d.rx.laps, a.tx.pos, laps)
	}
	t.Logf("%d bytes, %d rewinds, highest index %d", sent, laps, maxPos)
}
