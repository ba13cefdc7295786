package peer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/internal/frame"
)

// TestHTTPLoop serves RoleHTTP on one end of a net.Pipe and sends keep-alive
// requests on the other: every body comes back unchanged, the counts
// match, a wrong path is 404, and the loop ends cleanly when the client
// closes the connection.
func TestHTTPLoop(t *testing.T) {
	srvConn, cliConn := net.Pipe()
	var st ConnStats
	done := make(chan error, 1)
	go func() { done <- httpLoop(srvConn, frame.Config{}, 0, &st) }()

	dials := 0
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		dials++
		if dials > 1 {
			return nil, errors.New("second dial")
		}
		return cliConn, nil
	}}
	client := &http.Client{Transport: tr}
	sizes := []int{0, 1, 100, 70 << 10}
	var total int64
	for i, n := range sizes {
		body := make([]byte, n)
		frame.Fill(body, 0, uint64(i))
		resp, err := client.Post("http://peer"+HTTPPath, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Fatalf("request %d (%d bytes): status %d, %d bytes back, equal %v, err %v", i, n, resp.StatusCode, len(got), bytes.Equal(got, body), err)
		}
		total += int64(n)
	}
	resp, err := client.Get("http://peer/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: status %d, want 404", resp.StatusCode)
	}
	tr.CloseIdleConnections()
	if err := <-done; err != nil {
		t.Fatalf("httpLoop = %v, want nil after the client closed", err)
	}
	if st.Messages != int64(len(sizes)) || st.Bytes != total {
		t.Errorf("stats %+v, want %d messages, %d bytes", st, len(sizes), total)
	}
	if dials != 1 {
		t.Errorf("%d dials, want 1 (keep-alive)", dials)
	}
}

// TestHTTPLoopNeedsConn: a plain reader/writer is refused with a clear error.
func TestHTTPLoopNeedsConn(t *testing.T) {
	var st ConnStats
	err := httpLoop(rw{strings.NewReader(""), io.Discard}, frame.Config{}, 0, &st)
	if err == nil || !strings.Contains(err.Error(), "needs a net.Conn") {
		t.Fatalf("httpLoop on a reader/writer = %v", err)
	}
}

// TestHTTPLoopRefusesHugeBody: a Content-Length above the largest message
// is refused with 413 before anything is allocated for it (the handler read
// bodies into a buffer of the claimed size: a client claiming 1 TiB made
// this process die allocating it), and the loop reports frame.ErrTooLarge.
// The largest message is the session framing's, and a framing cannot raise
// it above frame.DefaultMaxSize.
func TestHTTPLoopRefusesHugeBody(t *testing.T) {
	for _, cfg := range []frame.Config{{MaxSize: 1 << 10}, {Mode: frame.Delimited, MaxSize: math.MaxInt}} {
		srvConn, cliConn := net.Pipe()
		var st ConnStats
		done := make(chan error, 1)
		go func() { done <- httpLoop(srvConn, cfg, 0, &st) }()

		go io.WriteString(cliConn, "POST "+HTTPPath+" HTTP/1.1\r\nHost: peer\r\nContent-Length: 1099511627776\r\n\r\nxyz")
		resp, err := http.ReadResponse(bufio.NewReader(cliConn), nil)
		if err != nil {
			cliConn.Close()
			t.Fatalf("%+v: reading the response: %v", cfg, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%+v: status %d, want %d", cfg, resp.StatusCode, http.StatusRequestEntityTooLarge)
		}
		cliConn.Close()
		if err := <-done; !errors.Is(err, frame.ErrTooLarge) {
			t.Errorf("%+v: loop returned %v, want an error wrapping frame.ErrTooLarge", cfg, err)
		}
		if st.Messages != 0 {
			t.Errorf("%+v: %d messages counted, want 0", cfg, st.Messages)
		}
	}
}
