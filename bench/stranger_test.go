package bench

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// TestStrangerIsNotMeasured connects two strangers to a case's listener,
// as another process on the machine can to any TCP port: one sends junk as
// long as a secret, one sends nothing. In the first trial they connect
// before the peer even starts; under IPCBENCH_STRESS (make stress) 20 more
// trials per case connect them at random moments of the peer's start-up
// and dials (between a fanin peer's connections, say). Each case must still
// measure its real peer (every frame checked), and each stranger must end
// closed without receiving a byte of the workload.
func TestStrangerIsNotMeasured(t *testing.T) {
	o := testOptions(t)
	o.Transports = nil
	for _, tr := range testTransports(t) {
		if n := tr.Transport.Name(); n == "tcp-localhost" || n == "tcp-public" || n == "unix" {
			o.Transports = append(o.Transports, tr)
		}
	}
	o.Workloads = []string{"pingpong", "fanin", "connect"}
	o.FaninConns = []int{2}
	o.Sizes = []int{64}
	o.CaseTimeout = time.Minute
	o.Count = 50 // the silent stranger delays the first exchange past any short duration
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	// The real peer has the same time to prove itself once accepted: a
	// peer descheduled that long between its connect and its write would
	// be refused as a stranger.
	r.admitTimeout = time.Second
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	for _, cs := range r.Plan() {
		t.Run(cs.Label(), func(t *testing.T) {
			for trial := range stressTrials(1, 21) {
				var delay time.Duration
				if trial > 0 {
					delay = time.Duration(rng.Int64N(int64(400 * time.Millisecond)))
				}
				strangerTrial(t, r, cs, delay)
			}
		})
	}
	r.onListen = nil
}

// strangerTrial runs cs once with two strangers connecting delay after the
// bench listens.
func strangerTrial(t *testing.T, r *Runner, cs CaseSpec, delay time.Duration) {
	t.Helper()
	var mu sync.Mutex
	var strangers []net.Conn
	var wg sync.WaitGroup
	r.onListen = func(ep transports.Endpoint) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(delay)
			for _, junk := range [][]byte{bytes.Repeat([]byte{'x'}, peer.SecretSize), nil} {
				c, err := cs.Transport.Transport.Dial(context.Background(), ep)
				if err != nil {
					if delay == 0 {
						t.Errorf("stranger dial: %v", err)
					}
					return // late: the case is over and its listener gone
				}
				c.Write(junk) // may fail once the bench has closed it
				mu.Lock()
				strangers = append(strangers, c)
				mu.Unlock()
			}
		}()
	}
	res, err := r.RunCase(context.Background(), cs, 0)
	if err != nil || res.Status != StatusOK || res.Messages == 0 || res.Errors != 0 {
		t.Errorf("strangers %v after listen: %v; status %s, %d messages, %d errors: %s", delay, err, res.Status, res.Messages, res.Errors, res.Reason)
	}
	wg.Wait()
	if delay == 0 && len(strangers) != 2 {
		t.Errorf("%d strangers connected, want 2", len(strangers))
	}
	for i, c := range strangers {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		var buf [256]byte
		n, err := c.Read(buf[:])
		if n > 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("stranger %d (%v after listen): read %d bytes (%q), %v; want it closed without a byte", i, delay, n, buf[:n], err)
		}
		c.Close()
	}
}
