package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/hist"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// httpWorkload: net/http requests over the measured connection, keep-alive
// on, one at a time: a POST whose body has the case's size, echoed back by
// the peer's HTTP server (peer.RoleHTTP); every response body is checked.
// It shows what a transport buys an application that speaks HTTP, next to
// pingpong's bare round trip.
var httpWorkload = &workload{
	name:     "http",
	doc:      "net/http POST with a body of the case's size, echoed back, keep-alive on one connection, closed loop; every body checked",
	role:     peer.RoleHTTP,
	unframed: true,
	notEcho:  "needs an HTTP server's responses, and an echo server sends the request back",
	run:      runHTTP,
}

// runHTTP drives one closed HTTP request loop per connection.
func runHTTP(ctx context.Context, cr *caseRun) (measurement, error) {
	return runClosedLoops(ctx, cr, httpLoop)
}

// errSecondDial is what the HTTP client gets when it wants a second
// connection: the case has exactly one, and keep-alive must reuse it.
var errSecondDial = errors.New("the http workload's client asked for a second connection (keep-alive lost)")

// httpLoop posts stamped bodies on c until cr.stop is set, reads and
// checks each echoed body and times the exchange. Only exchanges that
// start while cr.measure is set are recorded.
func httpLoop(cr *caseRun, c net.Conn, conn uint32, h *hist.Histogram) (msgs, errs int64, err error) {
	var once sync.Once
	tr := &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			var got net.Conn
			once.Do(func() { got = c })
			if got == nil {
				return nil, errSecondDial
			}
			return got, nil
		},
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	limit := cr.limitOf(conn)
	size := cr.spec.Size
	out := make([]byte, size)
	in := make([]byte, size+1)
	frame.Fill(out, conn, 0)
	body := bytes.NewReader(nil)
	url := "http://ipcbench" + peer.HTTPPath
	for seq := uint64(0); !cr.stop.Load(); seq++ {
		frame.Stamp(out, conn, seq)
		body.Reset(out)
		req, err := http.NewRequest(http.MethodPost, url, body)
		if err != nil {
			return msgs, errs, err
		}
		measuring := cr.measure.Load()
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return msgs, errs, stopErr(cr, "request", err)
		}
		n, rerr := io.ReadFull(resp.Body, in)
		resp.Body.Close()
		d := time.Since(t0)
		if rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF) && !errors.Is(rerr, io.EOF) {
			return msgs, errs, stopErr(cr, "reading the response", rerr)
		}
		if resp.StatusCode != http.StatusOK || n != size || frame.Check(in[:n], conn, seq) != nil {
			errs++
		}
		if !measuring {
			continue
		}
		h.Record(d.Nanoseconds())
		msgs++
		cr.progressed()
		if msgs == limit {
			break
		}
	}
	return msgs, errs, nil
}
