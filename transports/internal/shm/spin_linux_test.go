package shm

import (
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
)

// TestSpinStats walks the adaptive spin's calibration: spinLossLimit
// losses in a row start a run of sleeping waits, each lost probe doubles
// the run up to spinBackoffMax, and one win resets it.
func TestSpinStats(t *testing.T) {
	var s spinStats
	for i := 1; i < spinLossLimit; i++ {
		s.lost()
		if s.skip != 0 {
			t.Fatalf("after %d losses skip = %d, want 0", i, s.skip)
		}
	}
	s.won()
	for range spinLossLimit - 1 {
		s.lost()
	}
	if s.skip != 0 {
		t.Fatalf("a win did not reset the losses: skip %d", s.skip)
	}
	s.lost()
	if s.skip != spinBackoffMin {
		t.Fatalf("after %d losses in a row skip = %d, want %d", spinLossLimit, s.skip, spinBackoffMin)
	}
	want := spinBackoffMin
	for range 20 {
		s.skip = 0 // the sleeping waits went by; the probe loses
		s.lost()
		want = min(2*want, spinBackoffMax)
		if s.skip != want {
			t.Fatalf("after a lost probe skip = %d, want %d", s.skip, want)
		}
	}
	s.won()
	if s != (spinStats{}) {
		t.Fatalf("a win left %+v", s)
	}
}

// TestAdaptiveWaitBacksOff: reads that wait longer than the spin budget
// (a peer that answers slowly, as one sharing the core does) make the
// adaptive wait stop spinning for a run of waits.
func TestAdaptiveWaitBacksOff(t *testing.T) {
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{Options: map[string]string{OptionSpinNS: "1000"}}), 0)
	buf := make([]byte, 1)
	// slowRead reads one byte that the writer sends 20 ms later, far
	// beyond the 1 µs budget. (On a loaded machine the read may start
	// after the byte arrived and not wait at all; the loops allow that.)
	slowRead := func() {
		t.Helper()
		go func() {
			time.Sleep(20 * time.Millisecond)
			a.Write([]byte{1})
		}()
		if _, err := d.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; d.rspin.skip != spinBackoffMin; i++ {
		if i == 50 {
			t.Fatalf("after %d slow answers the reader's spin record is %+v, want %d waits that skip the spin", i, d.rspin, spinBackoffMin)
		}
		slowRead()
	}
	// A sleeping wait uses up one skip.
	for i := 0; d.rspin.skip == spinBackoffMin; i++ {
		if i == 50 {
			t.Fatalf("%d slow reads used up no skip: %+v", i, d.rspin)
		}
		slowRead()
	}
	if d.rspin.skip != spinBackoffMin-1 || d.rspin.backoff != spinBackoffMin {
		t.Fatalf("after one sleeping wait the spin record is %+v, want skip %d", d.rspin, spinBackoffMin-1)
	}
}
