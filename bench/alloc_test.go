package bench

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// allocWorkloads are the workloads whose measured loops must not allocate.
var allocWorkloads = []string{"pingpong", "stream", "fanin"}

// TestMeasuredLoopsDoNotAllocate counts the bench process's heap
// allocations over the measured interval of each workload on each
// transport, with the CPU-placement sampler (which reads /proc at its own
// pace) left out. A loop that allocated per message would show at least one
// allocation per message; the bound leaves room for what the rest of the
// process does meanwhile (timers, the runtime).
func TestMeasuredLoopsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own; run without -race")
	}
	for _, tr := range testTransports(t) {
		for _, w := range allocWorkloads {
			t.Run(w+"/"+tr.Label(), func(t *testing.T) {
				o := testOptions(t)
				o.Transports = []TransportSpec{tr}
				o.Workloads = []string{w}
				o.Sizes = []int{64}
				o.FaninConns = []int{4}
				o.Count = 20000
				r, err := NewRunner(o)
				if err != nil {
					t.Fatal(err)
				}
				r.noCPUSampler = true
				var before, after runtime.MemStats
				r.onMeasure = func(start bool) {
					if start {
						runtime.ReadMemStats(&before)
					} else {
						runtime.ReadMemStats(&after)
					}
				}
				res, err := r.RunCase(context.Background(), r.Plan()[0], 0)
				if err != nil || res.Status != StatusOK {
					t.Fatalf("%v %s", err, res.Reason)
				}
				if res.Messages < o.Count {
					t.Fatalf("measured %d messages, want at least %d", res.Messages, o.Count)
				}
				per := float64(after.Mallocs-before.Mallocs) / float64(res.Messages)
				t.Logf("%d allocations over %d messages: %.4f per message", after.Mallocs-before.Mallocs, res.Messages, per)
				if per > 0.01 {
					t.Errorf("%.3f allocations per message in the measured loop", per)
				}
			})
		}
	}
}

// BenchmarkLoops runs each workload's measured loop for b.N messages over
// each transport, timing (and, with -benchmem, counting the allocations of)
// only the measured interval:
//
//	go test -run '^$' -bench Loops -benchmem ./bench/
func BenchmarkLoops(b *testing.B) {
	for _, tr := range testTransports(b) {
		for _, w := range allocWorkloads {
			b.Run("workload="+w+"/transport="+tr.Label(), func(b *testing.B) {
				o := testOptions(b)
				o.Transports = []TransportSpec{tr}
				o.Workloads = []string{w}
				o.Sizes = []int{64}
				o.FaninConns = []int{4}
				o.Warmup = 50 * time.Millisecond
				o.Count = int64(b.N)
				r, err := NewRunner(o)
				if err != nil {
					b.Fatal(err)
				}
				r.noCPUSampler = true
				b.ReportAllocs()
				b.StopTimer()
				r.onMeasure = func(start bool) {
					if start {
						b.ResetTimer()
						b.StartTimer()
					} else {
						b.StopTimer()
					}
				}
				res, err := r.RunCase(context.Background(), r.Plan()[0], 0)
				if err != nil || res.Status != StatusOK {
					b.Fatalf("%v %s", err, res.Reason)
				}
			})
		}
	}
}
