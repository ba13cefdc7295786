package bench

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// TestStrangerIsNotMeasured connects two strangers to a case's listener
// before its peer even starts, as another process on the machine can to
// any TCP port: one sends junk as long as a secret, one sends nothing.
// Each case must still measure its real peer (every frame checked), and
// each stranger must be closed without receiving a byte of the workload.
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
	r.admitTimeout = 300 * time.Millisecond
	for _, cs := range r.Plan() {
		t.Run(cs.Label(), func(t *testing.T) {
			var mu sync.Mutex
			var strangers []net.Conn
			r.onListen = func(ep transports.Endpoint) {
				for _, junk := range [][]byte{bytes.Repeat([]byte{'x'}, peer.SecretSize), nil} {
					c, err := cs.Transport.Transport.Dial(context.Background(), ep)
					if err != nil {
						t.Errorf("stranger dial: %v", err)
						return
					}
					if _, err := c.Write(junk); err != nil {
						t.Errorf("stranger write: %v", err)
					}
					mu.Lock()
					strangers = append(strangers, c)
					mu.Unlock()
				}
			}
			res, err := r.RunCase(context.Background(), cs, 0)
			if err != nil || res.Status != StatusOK || res.Messages == 0 || res.Errors != 0 {
				t.Errorf("case with strangers: %v; status %s, %d messages, %d errors: %s", err, res.Status, res.Messages, res.Errors, res.Reason)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(strangers) != 2 {
				t.Fatalf("%d strangers connected, want 2", len(strangers))
			}
			for i, c := range strangers {
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				var buf [256]byte
				n, err := c.Read(buf[:])
				if n > 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("stranger %d: read %d bytes (%q), %v; want it closed without a byte", i, n, buf[:n], err)
				}
				c.Close()
			}
		})
	}
	r.onListen = nil
}
