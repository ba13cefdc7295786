package peer

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// scriptedLink is a Link whose replies the test hands in one by one; it
// reports every Recv that starts.
type scriptedLink struct {
	replies chan Reply
	recvs   chan struct{} // a token per Recv that starts
}

func (l *scriptedLink) Send(any) error { return nil }

func (l *scriptedLink) Recv(ctx context.Context, v any) error {
	l.recvs <- struct{}{}
	select {
	case r := <-l.replies:
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, v)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestWaitSeesReplyReadByAnother: a caller whose reply another caller
// read and kept for it, just after the first looked at the pending
// replies and before it waited to read, gets it, while the reader goes on
// waiting for its own. Before, it waited for the reader's turn, which
// ended only with the reader's own reply: a CPU call made while Done
// waited for a connection to end hung until its context did (seen once
// in CI, TestCPUWhileWaitingForDone).
func TestWaitSeesReplyReadByAnother(t *testing.T) {
	l := &scriptedLink{replies: make(chan Reply), recvs: make(chan struct{}, 8)}
	c := NewLinkClient(l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The reader: waits for the done reply of job 1, reading.
	doneC := make(chan error, 1)
	go func() {
		_, err := c.wait(ctx, 1, OpDone)
		doneC <- err
	}()
	<-l.recvs // it reads

	// The other caller waits for job 2's cpu reply. Between its look at
	// the pending replies and its wait for sem, the reader reads that
	// reply, keeps it, and reads again.
	hooked := false
	testHookBeforeSem = func(id uint64) {
		if id != 2 || hooked {
			return
		}
		hooked = true
		l.replies <- Reply{ID: 2, Op: OpCPU, UserNS: 5}
		<-l.recvs // the reader reads again, holding sem
	}
	defer func() { testHookBeforeSem = nil }()
	cpuCtx, cpuCancel := context.WithTimeout(ctx, 3*time.Second)
	defer cpuCancel()
	r, err := c.wait(cpuCtx, 2, OpCPU)
	if err != nil || r.UserNS != 5 {
		t.Fatalf("cpu reply: %+v, %v; want the one the reader kept", r, err)
	}

	l.replies <- Reply{ID: 1, Op: OpDone}
	if err := <-doneC; err != nil {
		t.Fatalf("done: %v", err)
	}
}
