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
	for range spinLossLimit {
		go func() {
			time.Sleep(3 * time.Millisecond) // far beyond the 1 µs budget
			a.Write([]byte{1})
		}()
		if _, err := d.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	if d.rspin.skip != spinBackoffMin {
		t.Fatalf("after %d slow answers the reader's spin record is %+v, want %d waits skipping the spin", spinLossLimit, d.rspin, spinBackoffMin)
	}
	// A sleeping wait uses up one skip.
	go func() {
		time.Sleep(3 * time.Millisecond)
		a.Write([]byte{1})
	}()
	if _, err := d.Read(buf); err != nil {
		t.Fatal(err)
	}
	if d.rspin.skip != spinBackoffMin-1 {
		t.Fatalf("skip = %d after one sleeping wait, want %d", d.rspin.skip, spinBackoffMin-1)
	}
}
