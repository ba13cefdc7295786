package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/frame"
)

// socketPair returns the two ends of a connected unix stream socket pair
// as net.Conns (which, unlike net.Pipe, can half-close).
func socketPair(t *testing.T) (a, b *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "fuzz-socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// FuzzServeConn feeds arbitrary bytes to a stand-alone server
// (`ipcbench serve`) as one connection, then ends the connection's input,
// and checks what the server answers: a connection that starts with a
// whole hello prefix gets one answer line, ok (with a 32-digit session id
// and the server's tool) or error, and, once accepted as a control
// connection, only reply lines that decode to a Reply with a known op;
// a connection whose first bytes are no hello prefix is served as an echo
// client, so what comes back is a prefix of what it sent; a connection
// that ends inside the hello prefix gets nothing.
func FuzzServeConn(f *testing.F) {
	control := helloLine(Hello{Version: ProtocolVersion, Kind: KindControl}) + "\n"
	f.Add([]byte(control))
	f.Add([]byte(control + `{"op":"cpu","id":1}` + "\n" + `{"op":"header","id":2}` + "\n" + `{"op":"exit"}` + "\n"))
	f.Add([]byte(control + `{"op":"serve","id":1,"conns":2,"role":"echo","frame":{}}` + "\n" + `{"op":"end","id":2}` + "\n"))
	f.Add([]byte(control + `{"op":"serve","id":1,"role":"connect","frame":{"mode":"delimited"}}` + "\n" + `{"op":"end","id":2}` + "\n"))
	f.Add([]byte(control + `{"op":"serve","id":1,"conns":-1,"role":"sink","frame":{"mode":"fixed","size":-3}}` + "\n" + "not json\n" + `{"op":"bogus","id":7}` + "\n"))
	f.Add([]byte(helloLine(Hello{Version: ProtocolVersion, Kind: KindData, Session: fuzzSession, Conn: 0}) + "\n"))
	f.Add([]byte("ipcbench-hello/2 control\n"))
	f.Add([]byte("ipcbench-hello/1 control"))
	f.Add([]byte("ipcb"))
	f.Add([]byte("\x00\x00\x00\x05hello\x00\x00\x00\x00"))
	f.Add([]byte("\x00\x00\x00\x05hel"))
	f.Fuzz(func(t *testing.T, data []byte) {
		echo, err := frame.Config{}.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		const tool = "ipcbench fuzz"
		sv := &standalone{
			o:        ServeOptions{Echo: echo, Tool: tool, Log: log.New(io.Discard, "", 0)},
			header:   json.RawMessage(`{"tool":"ipcbench fuzz"}`),
			sessions: map[string]*session{},
			conns:    map[net.Conn]struct{}{},
		}
		client, server := socketPair(t)
		defer client.Close()
		handled := make(chan struct{})
		go func() {
			defer close(handled)
			defer server.Close()
			sv.handle(server, sideTransport)
		}()
		go func() {
			client.Write(data)
			client.CloseWrite()
		}()
		client.SetReadDeadline(time.Now().Add(20 * time.Second))
		out, err := io.ReadAll(client)
		// A server that stops reading (a refused hello, a frame over the
		// echo framing's maximum) closes with input unread, which a unix
		// socket reports as a reset after the bytes already sent.
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading what the server sent: %v (got %q)", err, out)
		}
		<-handled
		m := min(len(data), len(HelloPrefix))
		switch {
		case !bytes.Equal(data[:m], []byte(HelloPrefix[:m])):
			if !bytes.HasPrefix(data, out) {
				t.Fatalf("echo client sent %q, got back %q", data, out)
			}
			return
		case len(data) < len(HelloPrefix):
			if len(out) > 0 {
				t.Fatalf("a connection that ended in its hello prefix (%q) got %q", data, out)
			}
			return
		}
		lines := strings.SplitAfter(string(out), "\n")
		if lines[len(lines)-1] != "" {
			t.Fatalf("the server's output does not end with a newline: %q", out)
		}
		lines = lines[:len(lines)-1]
		if len(lines) == 0 {
			t.Fatalf("no answer to %q", data)
		}
		answer := strings.TrimSuffix(lines[0], "\n")
		if strings.HasPrefix(answer, ErrorPrefix) {
			if len(lines) > 1 {
				t.Fatalf("after the error answer %q the server sent %q", answer, lines[1:])
			}
			return
		}
		w, err := parseAnswer(answer)
		if err != nil {
			t.Fatalf("the server's answer %q does not parse: %v", answer, err)
		}
		if len(w.Session) != len(fuzzSession) || strings.Trim(w.Session, "0123456789abcdef") != "" || w.Tool != tool {
			t.Fatalf("the server's answer %q: session %q, tool %q", answer, w.Session, w.Tool)
		}
		for _, l := range lines[1:] {
			var r Reply
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("reply line %q: %v", l, err)
			}
			switch r.Op {
			case OpReady, OpError, OpDone, OpCPU, OpHeader:
			default:
				t.Fatalf("reply line %q has op %q", l, r.Op)
			}
		}
	})
}
