package ctxdeadline

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestOnDoneWaitsForTheSet: once ctx has ended, stop returns only after
// the past deadline was set, however late the setting runs; before ctx
// ends, stop keeps it from ever being set.
func TestOnDoneWaitsForTheSet(t *testing.T) {
	var set atomic.Int32
	slow := func(time.Time) error {
		time.Sleep(20 * time.Millisecond)
		set.Add(1)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := OnDone(ctx, slow)
	cancel()
	stop()
	if set.Load() != 1 {
		t.Fatalf("stop returned with the deadline set %d times, want 1", set.Load())
	}

	live, cancelLive := context.WithCancel(context.Background())
	OnDone(live, slow)()
	cancelLive()
	time.Sleep(50 * time.Millisecond)
	if set.Load() != 1 {
		t.Fatalf("a deadline was set after stop: %d sets, want 1", set.Load())
	}
}

// TestEnded: ctx's error, or DeadlineExceeded once ctx's deadline has
// passed even before ctx says so, or nil.
func TestEnded(t *testing.T) {
	if err := Ended(context.Background()); err != nil {
		t.Errorf("live: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Ended(ctx); err != context.Canceled {
		t.Errorf("cancelled: %v", err)
	}
	past, cancelPast := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelPast()
	if err := Ended(past); err != context.DeadlineExceeded {
		t.Errorf("past deadline: %v", err)
	}
}
