package shm

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
)

// TestRingLargeMessages writes messages larger than the ring, larger than
// half of it, and around the publish chunk (see ringView.chunk) through
// rings whose chunk is a quarter of the ring (MinRing) and smaller than a
// quarter (256 KiB), read with small and large Reads and with
// Peek/Release, every byte checked.
func TestRingLargeMessages(t *testing.T) {
	for _, ring := range []int{MinRing, 256 << 10} {
		for _, w := range waits[1:3] { // adaptive and futex: spinning and sleeping readers
			for _, mode := range []string{"read=5000", "read=ring", "peek"} {
				t.Run(itoa(ring>>10)+"KiB/"+w.name+"/"+mode, func(t *testing.T) {
					testLargeMessages(t, ring, w.opts, mode, false)
				})
			}
		}
	}
}

// TestRingShortLaps is TestRingLargeMessages with the two sides on one
// CPU, as far as the writer can tell: Writes of half the ring and more go
// through it shortLap bytes per lap (see lapFor), skipping the rest of
// each lap, with Writes that use the whole ring in between.
func TestRingShortLaps(t *testing.T) {
	saved := cpuNow
	t.Cleanup(func() { cpuNow = saved })
	cpuNow = func() uint32 { return 1 }
	for _, w := range waits[1:3] {
		for _, mode := range []string{"read=5000", "read=ring", "peek"} {
			t.Run(w.name+"/"+mode, func(t *testing.T) {
				testLargeMessages(t, 4*shortLap, w.opts, mode, true)
			})
		}
	}
}

func testLargeMessages(t *testing.T, ring int, opts map[string]string, mode string, together bool) {
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: ring, Options: opts}), 0)
	if together {
		d.tx.ctl.writerCPU.Store(1) // the reader's CPU, as its wait records it
		if a.lapFor(ring/2) != shortLap {
			t.Fatalf("lapFor(%d) = %d with both sides on one CPU, want %d", ring/2, a.lapFor(ring/2), shortLap)
		}
	}
	a.SetDeadline(time.Now().Add(testTimeout))
	d.SetDeadline(time.Now().Add(testTimeout))
	chunk := int(a.tx.chunk())
	if chunk >= ring || chunk > maxChunk {
		t.Fatalf("publish chunk %d for a %d-byte ring", chunk, ring)
	}
	sizes := []int{ring + 12345, ring/2 + 777, 3*ring + 5, ring, ring / 2, chunk - 1, chunk + 1, 2*ring - 3}
	if together {
		// frames: a 4-byte header, then the payload, as the stream
		// workload writes them
		for i := 0; i < 8; i++ {
			sizes = append(sizes, 4, ring)
		}
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	errc := make(chan error, 1)
	go func() {
		pos := 0
		for _, s := range sizes {
			msg := make([]byte, s)
			fillPattern(msg, pos)
			if n, err := a.Write(msg); err != nil || n != s {
				errc <- errors.New("Write(" + itoa(s) + " bytes) = " + itoa(n) + ": " + errString(err))
				return
			}
			pos += s
		}
		errc <- a.CloseWrite()
	}()
	got := 0
	buf := make([]byte, 5000)
	if mode == "read=ring" {
		buf = make([]byte, ring)
	}
	for {
		var b []byte
		var err error
		if mode == "peek" {
			b, err = d.Peek()
		} else {
			var n int
			n, err = d.Read(buf)
			b = buf[:n]
		}
		if at, ok := checkPattern(b, got); !ok {
			t.Fatalf("byte %d is wrong", at)
		}
		if mode == "peek" && err == nil {
			if rerr := d.Release(len(b)); rerr != nil {
				t.Fatal(rerr)
			}
		}
		got += len(b)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got != total {
		t.Fatalf("received %d bytes, sent %d", got, total)
	}
	// The writer skipped to a new lap (rewind stores where it stopped,
	// never a lap start, so never 0) in short laps, and never in a ring
	// of shortLap or less: a Write that never skipped passes every
	// check above.
	skip := a.tx.ctl.skip.Load()
	if together && skip == 0 {
		t.Errorf("%d bytes in messages of up to %d went through a %d-byte ring in short laps without one skip", total, 3*ring+5, ring)
	}
	if !together && skip != 0 {
		t.Errorf("the writer skipped (at %d) in a %d-byte ring", skip, ring)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestRingWriterWakesBeforeWaiting checks that a Write larger than the
// ring, published in pieces, wakes a reader that announced its sleep
// before the Write itself waits for space: otherwise both sides would
// sleep, the reader on bytes the writer published and the writer on space
// only the reader can free.
func TestRingWriterWakesBeforeWaiting(t *testing.T) {
	ring := 256 << 10
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: ring, Options: map[string]string{OptionWait: WaitFutex}}), 0)
	a.SetDeadline(time.Now().Add(testTimeout))
	d.SetDeadline(time.Now().Add(testTimeout))
	flag := &a.tx.ctl.readerWaiting
	seq := a.tx.ctl.dataSeq.Load()
	flag.Store(1) // a reader that announced its sleep (none runs yet)
	msg := make([]byte, ring+int(a.tx.chunk()))
	fillPattern(msg, 0)
	wrote := make(chan error, 1)
	go func() {
		_, err := a.Write(msg)
		wrote <- err
	}()
	deadline := time.Now().Add(testTimeout)
	for flag.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not wake the announced reader")
		}
		time.Sleep(time.Millisecond)
	}
	if a.tx.ctl.dataSeq.Load() == seq {
		t.Fatal("the writer cleared readerWaiting without bumping dataSeq")
	}
	// The ring holds ring bytes and the Write waits for the rest: it must
	// not have returned.
	select {
	case err := <-wrote:
		t.Fatalf("Write of %d bytes into a %d-byte ring returned (%v) with nothing read", len(msg), ring, err)
	default:
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(d, buf); err != nil {
		t.Fatal(err)
	}
	if at, ok := checkPattern(buf, 0); !ok {
		t.Fatalf("byte %d is wrong", at)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// TestAvailSkip checks what a consumer takes for data when the head is
// in a later lap than its tail: up to a skip the skip word names in the
// rest of the tail's lap, then nothing of the skipped bytes.
func TestAvailSkip(t *testing.T) {
	const ring = MinRing
	tests := []struct {
		name            string
		pos, head, skip uint64
		n, newPos       uint64
	}{
		{"within the lap", 100, 200, 150, 100, 100},
		{"full ring, skip word never set", 0, ring, 0, ring, 0},
		{"wrap, skip word behind", 100, ring + 50, 0, ring - 50, 100},
		{"wrap, an old skip behind", 5000, 2*ring + 10, 1000, 2*ring + 10 - 5000, 5000},
		{"skip ahead", 100, ring + 50, 1000, 900, 100},
		{"at the skip", 1000, ring + 50, 1000, 50, ring},
		{"at the skip, next lap still empty", 1000, ring, 1000, 0, ring},
		{"lap start, skip ahead", ring, 2 * ring, ring + 300, 300, ring},
		{"a skip word at a lap start names no skip", 2 * ring, 3 * ring, 2 * ring, ring, 2 * ring},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ringView{ctl: &ringCtl{}, data: make([]byte, ring), mask: ring - 1, pos: tt.pos, pub: tt.pos}
			r.ctl.rpos.Store(tt.pos)
			r.ctl.wpos.Store(tt.head)
			r.ctl.skip.Store(tt.skip)
			n, err := r.avail()
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.n || r.pos != tt.newPos {
				t.Errorf("avail() = %d with the tail at %d, want %d at %d", n, r.pos, tt.n, tt.newPos)
			}
		})
	}
}

// TestLoadTail checks the producer's validation of the consumer's
// counter: forward from where it was last read (by up to a ring, past
// skipped bytes), never backwards, past the head, or more than a ring
// behind it.
func TestLoadTail(t *testing.T) {
	const ring = MinRing
	tests := []struct {
		name            string
		cached, pos, at uint64
		bad             bool
	}{
		{"unchanged", 10, 20, 10, false},
		{"forward", 10, 20, 15, false},
		{"caught up", 10, 20, 20, false},
		{"past a skip, a ring on", 100, ring + 100, ring + 100, false},
		{"backwards", 10, 20, 9, true},
		{"past the head", 10, 20, 21, true},
		{"more than a ring behind the head", 0, 2 * ring, ring - 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ringView{ctl: &ringCtl{}, data: make([]byte, ring), mask: ring - 1, pos: tt.pos, tail: tt.cached}
			r.ctl.rpos.Store(tt.at)
			err := r.loadTail()
			switch {
			case tt.bad && !errors.Is(err, transports.ErrCorrupt):
				t.Errorf("loadTail = %v, want ErrCorrupt", err)
			case !tt.bad && err != nil:
				t.Errorf("loadTail: %v", err)
			case !tt.bad && r.tail != tt.at:
				t.Errorf("tail %d after loadTail, want %d", r.tail, tt.at)
			}
		})
	}
}

// TestRewind checks the producer's skip to the next lap: it publishes
// the skip before the head, the consumer takes the bytes before the skip
// and none of the skipped ones, and no second skip is made before the
// consumer passed the first.
func TestRewind(t *testing.T) {
	const ring = 64 << 10
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: ring}), 0)
	a.SetDeadline(time.Now().Add(testTimeout))
	d.SetDeadline(time.Now().Add(testTimeout))
	msg := make([]byte, 1500)
	fillPattern(msg, 0)
	if _, err := a.Write(msg[:1000]); err != nil {
		t.Fatal(err)
	}
	if _, err := a.rewind(0); err != nil {
		t.Fatal(err)
	}
	if a.tx.pos != ring || a.tx.ctl.wpos.Load() != ring || a.tx.ctl.skip.Load() != 1000 {
		t.Fatalf("after a skip at 1000: head %d (published %d), skip word %d; want %d, %d, 1000",
			a.tx.pos, a.tx.ctl.wpos.Load(), a.tx.ctl.skip.Load(), ring, ring)
	}
	if _, err := a.rewind(0); err != nil || a.tx.pos != ring {
		t.Fatalf("a skip at a lap's start moved the head to %d (%v)", a.tx.pos, err)
	}
	// The consumer takes 500 bytes and publishes its tail: room for 500
	// bytes in the new lap, but the consumer did not pass the skip yet.
	buf := make([]byte, 500)
	if _, err := io.ReadFull(d, buf); err != nil {
		t.Fatal(err)
	}
	d.publishTail()
	if _, err := a.Write(msg[1000:]); err != nil {
		t.Fatal(err)
	}
	if _, err := a.rewind(0); err != nil || a.tx.pos != ring+500 || a.tx.ctl.skip.Load() != 1000 {
		t.Fatalf("skipped again (head %d, skip word %d, %v) before the consumer passed the first skip",
			a.tx.pos, a.tx.ctl.skip.Load(), err)
	}
	got := make([]byte, 1000)
	if _, err := io.ReadFull(d, got); err != nil {
		t.Fatal(err)
	}
	if at, ok := checkPattern(got, 500); !ok {
		t.Fatalf("byte %d after the skip is wrong: the consumer took skipped bytes", 500+at)
	}
	d.SetReadDeadline(time.Now().Add(time.Millisecond))
	if n, err := d.Read(got); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read found %d more bytes (%v), want none", n, err)
	}
	// Having waited, the consumer published its tail past the skip: the
	// producer skips again.
	if _, err := a.rewind(0); err != nil || a.tx.pos != 2*ring || a.tx.ctl.skip.Load() != ring+500 {
		t.Fatalf("no skip (head %d, skip word %d, %v) after the consumer passed the first", a.tx.pos, a.tx.ctl.skip.Load(), err)
	}
	// A head that moved under its writer (a corrupt peer) is reported,
	// not stored over, even when the tail last read allows the skip.
	a.tx.pos += 100
	a.tx.tail = a.tx.pos &^ a.tx.mask
	a.tx.ctl.wpos.Store(a.tx.pos + 7)
	if _, err := a.rewind(0); !errors.Is(err, transports.ErrCorrupt) || a.tx.ctl.wpos.Load() != a.tx.pos+7 {
		t.Fatalf("rewind over a head moved by the peer: %v (head in the mapping %d), want ErrCorrupt and the head left alone", err, a.tx.ctl.wpos.Load())
	}
}

// TestLapFor checks when a Write uses short laps: large Writes through a
// ring larger than shortLap whose reader last waited on this CPU.
func TestLapFor(t *testing.T) {
	saved := cpuNow
	t.Cleanup(func() { cpuNow = saved })
	cpu := uint32(3)
	cpuNow = func() uint32 { return cpu }
	big := 4 * shortLap
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: big}), 0)
	small, sd := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: shortLap}), 0)
	d.tx.ctl.writerCPU.Store(3)
	sd.tx.ctl.writerCPU.Store(3)
	tests := []struct {
		name string
		c    *Conn
		n    int
		cpu  uint32
		want uint64
	}{
		{"half the ring, same CPU", a, big / 2, 3, shortLap},
		{"more than the ring, same CPU", a, 3 * big, 3, shortLap},
		{"less than half the ring", a, big/2 - 1, 3, 0},
		{"other CPU", a, big, 4, 0},
		{"CPU unknown", a, big, 0, 0},
		{"ring of shortLap", small, shortLap, 3, 0},
	}
	for _, tt := range tests {
		cpu = tt.cpu
		if got := tt.c.lapFor(tt.n); got != tt.want {
			t.Errorf("%s: lapFor(%d) = %d, want %d", tt.name, tt.n, got, tt.want)
		}
	}
	cpu = 3
	d.tx.ctl.writerCPU.Store(0) // the reader has not waited yet
	if got := a.lapFor(big); got != 0 {
		t.Errorf("lapFor = %d with the reader's CPU unknown, want 0", got)
	}
}

// TestShortLapsSleepAtOnce checks that a writer in short laps waits for
// space without polling under the adaptive wait while the reader shares
// its core, and that the reader's wait, other Writes, and a Write whose
// reader moved to another CPU keep the budget.
func TestShortLapsSleepAtOnce(t *testing.T) {
	saved := cpuNow
	t.Cleanup(func() { cpuNow = saved })
	cpuNow = func() uint32 { return 3 }
	a, _ := connectT(t, listenKindT(t, Ring, transports.Config{}), 0)
	a.rx.ctl.writerCPU.Store(3) // the reader last waited on this CPU
	if a.set.wait != WaitAdaptive || a.set.spin == 0 {
		t.Fatalf("wait %q, spin %v: want the adaptive default", a.set.wait, a.set.spin)
	}
	if got := a.spinBudget(&a.wspin, &a.wwait); got != a.set.spin {
		t.Errorf("writer's budget %v, want %v", got, a.set.spin)
	}
	a.tx.shortLaps = true
	if got := a.spinBudget(&a.wspin, &a.wwait); got != 0 {
		t.Errorf("writer's budget in short laps %v, want 0", got)
	}
	if got := a.spinBudget(&a.rspin, &a.rwait); got != a.set.spin {
		t.Errorf("reader's budget while the writer is in short laps %v, want %v", got, a.set.spin)
	}
	a.rx.ctl.writerCPU.Store(4) // the reader moved to another CPU mid-Write
	if got := a.spinBudget(&a.wspin, &a.wwait); got != a.set.spin {
		t.Errorf("writer's budget in short laps with the reader on another CPU %v, want %v", got, a.set.spin)
	}
	a.tx.shortLaps = false
}

// TestShortLapsAfterClose checks that a large Write on a closed
// connection whose reader shared its CPU reports the close: choosing the
// lap must not read the unmapped mapping.
func TestShortLapsAfterClose(t *testing.T) {
	saved := cpuNow
	t.Cleanup(func() { cpuNow = saved })
	cpuNow = func() uint32 { return 1 }
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: 4 * shortLap}), 0)
	d.tx.ctl.writerCPU.Store(1)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(make([]byte, 4*shortLap)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// TestHotLaps checks that small Writes into a ring the reader keeps
// drained go back to its start once hotLap bytes into a lap, that a
// reader that lags makes the writer go on for another hotLap bytes, and
// that every byte arrives either way.
func TestHotLaps(t *testing.T) {
	const ring = 64 << 10
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: ring}), 0)
	a.SetDeadline(time.Now().Add(testTimeout))
	d.SetDeadline(time.Now().Add(testTimeout))
	const size = 1000
	msg := make([]byte, size)
	got := make([]byte, size)
	sent, recvd := 0, 0
	write := func() {
		t.Helper()
		fillPattern(msg, sent)
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		sent += size
	}
	// read takes one message and publishes the tail, as a reader does
	// before it waits for the next one.
	read := func() {
		t.Helper()
		if _, err := io.ReadFull(d, got); err != nil {
			t.Fatal(err)
		}
		if at, ok := checkPattern(got, recvd); !ok {
			t.Fatalf("byte %d is wrong", at)
		}
		recvd += size
		d.publishTail()
	}
	into := func() uint64 { return (a.tx.pos - 1) & a.tx.mask } // where the last byte went

	// An exchange: the head never goes further into a lap than hotLap
	// and one message, though 4 rings' worth pass.
	laps := 0
	for sent < 4*ring {
		before := a.tx.pos
		write()
		if a.tx.pos&^a.tx.mask != before&^a.tx.mask {
			laps++
		}
		if into() >= hotLap+size {
			t.Fatalf("after %d bytes the head is %d bytes into its lap, want less than %d", sent, into()+1, hotLap+size)
		}
		read()
	}
	if want := 4 * ring / (hotLap + size); laps < want {
		t.Fatalf("the writer went back to the ring's start %d times in %d bytes, want at least %d", laps, sent, want)
	}

	// The reader lags by more than hotWrite when the head passes hotLap:
	// the writer goes on.
	for a.tx.pos&a.tx.mask < hotLap {
		write()
	}
	lap, at := a.tx.pos&^a.tx.mask, a.tx.pos
	write()
	if a.tx.pos != at+size || a.tx.coldUntil != at+hotLap {
		t.Fatalf("with the reader behind, the head went from %d to %d, cold until %d; want it at %d, cold until %d",
			at, a.tx.pos, a.tx.coldUntil, at+size, at+hotLap)
	}
	// Drained now, but no second try for hotLap bytes.
	for recvd < sent {
		read()
	}
	for a.tx.pos < at+hotLap {
		write()
		read()
		if a.tx.pos&^a.tx.mask != lap {
			t.Fatalf("the writer left lap %d %d bytes after a failed try, want no try for %d", lap, a.tx.pos-at, hotLap)
		}
	}
	// Then it tries again, and goes back.
	write()
	read()
	if a.tx.pos&^a.tx.mask != lap+ring || into() >= size {
		t.Fatalf("after a failed try and hotLap bytes, the head is %d (lap %d), want %d bytes into lap %d", a.tx.pos, a.tx.pos&^a.tx.mask, size, lap+ring)
	}
}
