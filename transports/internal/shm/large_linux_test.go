package shm

import (
	"errors"
	"io"
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
					testLargeMessages(t, ring, w.opts, mode)
				})
			}
		}
	}
}

func testLargeMessages(t *testing.T, ring int, opts map[string]string, mode string) {
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{BufferSize: ring, Options: opts}), 0)
	a.SetDeadline(time.Now().Add(testTimeout))
	d.SetDeadline(time.Now().Add(testTimeout))
	chunk := int(a.tx.chunk())
	if chunk >= ring || chunk > maxChunk {
		t.Fatalf("publish chunk %d for a %d-byte ring", chunk, ring)
	}
	sizes := []int{ring + 12345, ring/2 + 777, 3*ring + 5, ring, ring / 2, chunk - 1, chunk + 1, 2*ring - 3}
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
