package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports/peer"
)

var errDeadline = os.ErrDeadlineExceeded

// streamWorkload: the bench process pushes messages one way; the peer reads
// and checks every one and, at the end marker (an empty frame), answers with
// its counts. The receiver's count is the truth: the measured interval runs
// from the end of the warm-up to the arrival of the receiver's
// acknowledgement, and the messages counted are those the receiver got after
// the warm-up's last one.
var streamWorkload = &workload{
	name:    "stream",
	doc:     "one-way throughput: the bench pushes messages, the peer reads and checks every one and acknowledges at the end",
	role:    "sink",
	notEcho: "needs the receiver's acknowledgement, which an echo server does not send",
	run:     runStream,
}

func runStream(ctx context.Context, cr *caseRun) (measurement, error) {
	c := cr.conns[0]
	size := cr.spec.Size
	w := frame.NewWriter(c, cr.frame)
	r := frame.NewReader(c, cr.frame)
	out := make([]byte, size)
	frame.Fill(out, 0, 0)

	clockErr := make(chan error, 1)
	go func() { clockErr <- cr.clock(ctx) }()

	var warm, sent int64 // messages sent before the measured interval, and in all
	for seq := uint64(0); !cr.stop.Load(); seq++ {
		if !cr.measure.Load() {
			warm = int64(seq) + 1
		} else if cr.limit > 0 && sent-warm >= cr.limit {
			break
		}
		frame.Stamp(out, 0, seq)
		if err := w.WriteMsg(out); err != nil {
			cr.stop.Store(true)
			<-clockErr
			return measurement{}, stopErr(cr, "write", err)
		}
		sent++
		cr.progressed()
	}
	if err := <-clockErr; err != nil {
		return measurement{}, err
	}
	if !cr.measure.Load() {
		return measurement{}, fmt.Errorf("stopped during warm-up")
	}
	// End marker, then the receiver's acknowledgement.
	if err := w.WriteMsg(nil); err != nil {
		return measurement{}, fmt.Errorf("writing end marker: %w", err)
	}
	msg, err := r.ReadMsg(make([]byte, 256))
	end := time.Now()
	cr.measured()
	if err != nil {
		return measurement{}, fmt.Errorf("reading the receiver's acknowledgement: %w", err)
	}
	ack, err := peer.DecodeAck(msg)
	if err != nil {
		return measurement{}, fmt.Errorf("receiver's acknowledgement: %w", err)
	}
	if ack.Messages != sent {
		return measurement{}, fmt.Errorf("receiver counted %d messages, sender sent %d: data lost", ack.Messages, sent)
	}
	if err := cr.endMeasure(ctx); err != nil {
		return measurement{}, err
	}
	got := ack.Messages - warm
	return measurement{
		messages: got,
		bytes:    got * int64(size),
		errors:   ack.Errors,
		end:      end,
	}, nil
}
