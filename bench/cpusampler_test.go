package bench

import (
	"errors"
	"testing"
)

// fakeSource returns a cpuSource handing out the given weights, one map
// per call, then nothing.
func fakeSource(calls ...map[int]int64) cpuSource {
	return func() (map[int]int64, error) {
		if len(calls) == 0 {
			return nil, nil
		}
		m := calls[0]
		calls = calls[1:]
		if m == nil {
			return nil, errors.New("process gone")
		}
		return m, nil
	}
}

// TestCPUSamplerRendersRunTime checks that run time (ns) adds up per CPU
// across samples, is rendered in rounded milliseconds heaviest first, that
// a CPU with under half a millisecond still shows, as 0, and that a failed
// read is skipped.
func TestCPUSamplerRendersRunTime(t *testing.T) {
	s := newCPUSamplerFrom([2]cpuSource{
		fakeSource(map[int]int64{}, map[int]int64{1: 40e6, 0: 300e3}, nil, map[int]int64{1: 12_600_000}),
		fakeSource(map[int]int64{}, map[int]int64{1: 30e6}, map[int]int64{1: 20e6}),
	}, CPUsUnitMS)
	for range 4 {
		s.sample()
	}
	b, p, unit := s.result()
	if b != "1:53,0:0" || p != "1:50" || unit != CPUsUnitMS {
		t.Errorf("result = %q, %q, %q; want \"1:53,0:0\", \"1:50\", %q", b, p, unit, CPUsUnitMS)
	}
}

// TestCPUSamplerCountsSamples checks the fallback unit: counts rendered as
// they are, ties by CPU number.
func TestCPUSamplerCountsSamples(t *testing.T) {
	s := newCPUSamplerFrom([2]cpuSource{
		fakeSource(map[int]int64{0: 2, 1: 1}, map[int]int64{1: 1}),
		fakeSource(map[int]int64{1: 1}),
	}, CPUsUnitSamples)
	s.sample()
	s.sample()
	b, p, unit := s.result()
	if b != "0:2,1:2" || p != "1:1" || unit != CPUsUnitSamples {
		t.Errorf("result = %q, %q, %q", b, p, unit)
	}
}

// TestCPUSamplerStop checks that stop takes a last sample after start (the
// run time since the previous tick counts), none without start, and may be
// called twice; with nothing seen, result is empty, unit included.
func TestCPUSamplerStop(t *testing.T) {
	calls := 0
	src := func() (map[int]int64, error) { calls++; return map[int]int64{0: 1e6}, nil }
	s := newCPUSamplerFrom([2]cpuSource{src, fakeSource()}, CPUsUnitMS)
	s.start()
	s.stop()
	s.stop()
	if calls < 2 {
		t.Errorf("%d samples between start and stop, want the first and a last one", calls)
	}
	if b, _, _ := s.result(); b == "" {
		t.Error("no bench CPUs after start and stop")
	}
	calls = 0
	s = newCPUSamplerFrom([2]cpuSource{src, fakeSource()}, CPUsUnitMS)
	s.stop()
	if calls != 0 {
		t.Errorf("stop without start sampled %d times", calls)
	}
	if b, p, unit := s.result(); b != "" || p != "" || unit != "" {
		t.Errorf("nothing sampled, result = %q, %q, %q", b, p, unit)
	}
}
