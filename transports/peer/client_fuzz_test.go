package peer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fuzzLink is a Control whose replies come from a byte slice; what it
// sends is discarded.
func fuzzLink(t *testing.T, replies []byte) *Control {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close() })
	go func() {
		io.Copy(io.Discard, b)
		b.Close()
	}()
	return &Control{c: a, r: bufio.NewReaderSize(bytes.NewReader(replies), 64<<10)}
}

// FuzzControlReplies feeds arbitrary reply lines to a Client over a
// stand-alone peer's control connection (Control.Recv decodes them) and
// runs a session's calls on them: serve (ID 1), cpu (2), header (3) and
// done. Every error wraps ErrProtocol, ErrFailed, ErrNotApplicable or
// io.ErrUnexpectedEOF (the replies ended); no more than maxPending
// replies are kept; a CPU time is never negative; a header is valid JSON;
// a done reply has op done and the serve job's ID.
func FuzzControlReplies(f *testing.F) {
	f.Add([]byte(`{"op":"ready","id":1}` + "\n" + `{"op":"cpu","id":2,"user_ns":5,"sys_ns":6}` + "\n" +
		`{"op":"header","id":3,"header":{"tool":"x"}}` + "\n" + `{"op":"done","id":1,"conns":[{"messages":3,"bytes":4,"errors":0}]}` + "\n"))
	f.Add([]byte(`{"op":"done","id":1}` + "\n" + `{"op":"header","id":3,"header":null}` + "\n" + `{"op":"cpu","id":2}` + "\n" + `{"op":"ready","id":1}` + "\n"))
	f.Add([]byte(`{"op":"error","id":1,"error":"no","not_applicable":true}` + "\n"))
	f.Add([]byte(`{"op":"ready","id":1}` + "\n" + `{"op":"cpu","id":2,"user_ns":-5,"sys_ns":6}` + "\n"))
	f.Add([]byte(`{"op":"error","error":"bad control line"}` + "\n"))
	f.Add([]byte(`{"op":"ready","id":1}` + "\n" + `{"op":"wat","id":2}` + "\n"))
	f.Add([]byte(`{"op":"ready","id":1}` + "\n" + strings.Repeat(`{"op":"cpu","id":9}`+"\n", maxPending+1)))
	f.Add([]byte(`{"op":"ready","id":1}` + "\n" + `{"op":"cpu","id":2`))
	f.Fuzz(func(t *testing.T, replies []byte) {
		ctl := fuzzLink(t, replies)
		c := NewLinkClient(ctl)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		check := func(call string, err error) bool {
			t.Helper()
			c.mu.Lock()
			pending := len(c.pending)
			c.mu.Unlock()
			if pending > maxPending {
				t.Fatalf("%s: %d pending replies, more than %d", call, pending, maxPending)
			}
			if err == nil {
				return true
			}
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrFailed) && !errors.Is(err, ErrNotApplicable) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s: error wraps no sentinel: %v", call, err)
			}
			return false
		}
		served := check("Serve", c.Serve(ctx, Job{Role: RoleEcho}))
		cpu, err := c.CPU(ctx)
		if check("CPU", err) && (cpu.User < 0 || cpu.System < 0) {
			t.Fatalf("CPU accepted a negative CPU time: %+v", cpu)
		}
		h, err := c.Header(ctx)
		if check("Header", err) && len(h) > 0 && !json.Valid(h) {
			t.Fatalf("Header returned invalid JSON %q", h)
		}
		if !served {
			return
		}
		r, err := c.Done(ctx)
		if check("Done", err) && (r.Op != OpDone || r.ID != 1) {
			t.Fatalf("Done returned op %q ID %d", r.Op, r.ID)
		}
	})
}
