package bench

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
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

// TestOptionErrorKeepsSentinels: an *OptionError names its field and
// wraps ErrBadOptions and the error it carries: a transport's own
// ErrBadOption, for one, stays visible to errors.Is; ParsePlacement's
// error is one for Placements.
func TestOptionErrorKeepsSentinels(t *testing.T) {
	o := Options{Transports: []TransportSpec{{Transport: unix.New(), Options: map[string]string{"io": "fast"}}}}
	_, err := o.withDefaults()
	var oe *OptionError
	if !errors.As(err, &oe) || oe.Field != "Transports" || !errors.Is(err, ErrBadOptions) || !errors.Is(err, transports.ErrBadOption) {
		t.Errorf("unix[io=fast]: err = %#v, want an *OptionError for Transports wrapping ErrBadOptions and transports.ErrBadOption", err)
	}
	if want := "bad options: unix[io=fast]: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("unix[io=fast]: err = %v, want it to begin %q", err, want)
	}
	_, err = ParsePlacement("moon")
	if !errors.As(err, &oe) || oe.Field != "Placements" || !errors.Is(err, ErrBadOptions) {
		t.Errorf("ParsePlacement(moon): err = %#v, want an *OptionError for Placements", err)
	}
}

// TestDescribeOnlyWhatRuns: the header records fanin_conns only for a run
// with fanin and rate only for one with the rate workload; a run of
// neither does not claim settings it never used.
func TestDescribeOnlyWhatRuns(t *testing.T) {
	for _, c := range []struct {
		workloads   []string
		conns, rate bool
	}{
		{[]string{"pingpong"}, false, false},
		{[]string{"pingpong", "stream"}, false, false},
		{[]string{"fanin"}, true, false},
		{[]string{"rate"}, false, true},
		{[]string{"rate", "fanin", "http"}, true, true},
		{nil, true, false}, // the default suite: pingpong, stream, fanin
	} {
		m := Options{Workloads: c.workloads, FaninConns: []int{4}, Rate: 1000}.Describe()
		if _, ok := m["fanin_conns"]; ok != c.conns {
			t.Errorf("workloads %v: fanin_conns recorded %v, want %v", c.workloads, ok, c.conns)
		}
		if _, ok := m["rate"]; ok != c.rate {
			t.Errorf("workloads %v: rate recorded %v, want %v", c.workloads, ok, c.rate)
		}
	}
}
