package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports/unix"
)

// TestWarmupDefaults checks the three meanings of Options.Warmup: zero is
// the default, NoWarmup is none (recorded as 0s), and any other negative
// value is refused.
func TestWarmupDefaults(t *testing.T) {
	base := Options{Transports: []TransportSpec{{Transport: unix.New()}}}
	for _, tt := range []struct {
		in       time.Duration
		want     time.Duration
		recorded string
		err      error
	}{
		{0, DefaultWarmup, DefaultWarmup.String(), nil},
		{NoWarmup, 0, "0s", nil},
		{5 * time.Millisecond, 5 * time.Millisecond, "5ms", nil},
		{-2, 0, "", ErrBadOptions},
	} {
		o := base
		o.Warmup = tt.in
		got, err := o.withDefaults()
		if !errors.Is(err, tt.err) {
			t.Errorf("Warmup %v: error %v, want %v", tt.in, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if got.Warmup != tt.want || got.Describe()["warmup"] != tt.recorded {
			t.Errorf("Warmup %v: got %v recorded %q, want %v recorded %q", tt.in, got.Warmup, got.Describe()["warmup"], tt.want, tt.recorded)
		}
		if got.CaseTimeout != got.Warmup+got.Duration+15*time.Second {
			t.Errorf("Warmup %v: case timeout %v", tt.in, got.CaseTimeout)
		}
	}
}
