package peer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode"
)

// fuzzSession is a session id as the server makes them (newSessionID).
const fuzzSession = "0123456789abcdef0123456789abcdef"

// helloLine is the hello line of h without its newline.
func helloLine(h Hello) string { return strings.TrimSuffix(string(h.AppendLine(nil)), "\n") }

// FuzzParseHello checks the server's parser of a client's hello line: an
// error wraps ErrNotServe or ErrVersion (then with the other side's
// version, positive and not ours, in the Hello); an accepted hello has our
// version and a known kind, a data hello a session id without white space
// and a conn index >= 0, a control hello neither; and the line AppendLine
// makes of an accepted hello parses to the same Hello.
func FuzzParseHello(f *testing.F) {
	f.Add(helloLine(Hello{Version: ProtocolVersion, Kind: KindControl}))
	f.Add(helloLine(Hello{Version: ProtocolVersion, Kind: KindData, Session: fuzzSession, Conn: 3}))
	f.Add(helloLine(Hello{Version: ProtocolVersion + 1, Kind: KindControl}))
	f.Add("ipcbench-hello/1 data session=a")
	f.Add("ipcbench-hello/1 data session= conn=1")
	f.Add("ipcbench-hello/1 data session=a conn=99999999999999999999")
	f.Add("ipcbench-hello/1  control\t")
	f.Add("ipcbench-hello/x control")
	f.Add("GET / HTTP/1.1")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		h, err := ParseHello(line)
		if err != nil {
			switch {
			case errors.Is(err, ErrVersion):
				if h.Version <= 0 || h.Version == ProtocolVersion {
					t.Fatalf("ParseHello(%q): version error with version %d: %v", line, h.Version, err)
				}
			case !errors.Is(err, ErrNotServe):
				t.Fatalf("ParseHello(%q): error wraps neither ErrNotServe nor ErrVersion: %v", line, err)
			}
			return
		}
		if h.Version != ProtocolVersion {
			t.Fatalf("ParseHello(%q) accepted version %d", line, h.Version)
		}
		switch h.Kind {
		case KindControl:
			if h.Session != "" || h.Conn != 0 {
				t.Fatalf("ParseHello(%q): control hello with session %q conn %d", line, h.Session, h.Conn)
			}
		case KindData:
			if h.Session == "" || strings.ContainsFunc(h.Session, unicode.IsSpace) || h.Conn < 0 {
				t.Fatalf("ParseHello(%q): data hello with session %q conn %d", line, h.Session, h.Conn)
			}
		default:
			t.Fatalf("ParseHello(%q) accepted kind %q", line, h.Kind)
		}
		again, err := ParseHello(helloLine(h))
		if err != nil || again != h {
			t.Fatalf("ParseHello(%q) = %+v, but its line %q parses to %+v, %v", line, h, helloLine(h), again, err)
		}
	})
}

// FuzzParseAnswer checks the client's parser of a server's answer to its
// hello: an error wraps ErrNotServe, ErrVersion or ErrRefused (always
// ErrRefused for an error answer); an accepted answer gives a session id
// that the client can send back in a data hello (of any conn index up to
// MaxConns) that fits in MaxHelloLen and that the server parses to the
// same id; and the answer the server makes of a Welcome parses to it.
func FuzzParseAnswer(f *testing.F) {
	ok := func(w Welcome) string { return strings.TrimSuffix(string(appendOK(nil, w)), "\n") }
	f.Add(ok(Welcome{Session: fuzzSession, Tool: "ipcbench v1.2.3 (abc1234)"}))
	f.Add(ok(Welcome{Session: "s", Tool: ""}))
	f.Add(ErrorPrefix + "protocol version mismatch: the client speaks ipcbench-hello/2, this server ipcbench-hello/1")
	f.Add(ErrorPrefix + "no such session")
	f.Add(helloLine(Hello{Version: ProtocolVersion, Kind: KindControl}))
	f.Add("ipcbench-ok/2 session=a tool=x")
	f.Add("ipcbench-ok/1 session= tool=x")
	f.Add("ipcbench-ok/1 session=a b tool=x")
	f.Add("ipcbench-ok/1 session=" + strings.Repeat("a", 480) + " tool=x")
	f.Add("ipcbench-ok/1 tool=x")
	f.Add("HTTP/1.1 400 Bad Request")
	f.Fuzz(func(t *testing.T, line string) {
		w, err := parseAnswer(line)
		if err != nil {
			if !errors.Is(err, ErrNotServe) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrRefused) {
				t.Fatalf("parseAnswer(%q): error wraps no sentinel: %v", line, err)
			}
			if strings.HasPrefix(line, ErrorPrefix) && !errors.Is(err, ErrRefused) {
				t.Fatalf("parseAnswer(%q): an error answer does not wrap ErrRefused: %v", line, err)
			}
			return
		}
		if w.Session == "" {
			t.Fatalf("parseAnswer(%q) accepted an empty session", line)
		}
		data := Hello{Version: ProtocolVersion, Kind: KindData, Session: w.Session, Conn: MaxConns - 1}
		if b := data.AppendLine(nil); len(b) > MaxHelloLen {
			t.Fatalf("parseAnswer(%q) accepted session %q: its data hello has %d bytes, more than %d", line, w.Session, len(b), MaxHelloLen)
		}
		if h, err := ParseHello(helloLine(data)); err != nil || h != data {
			t.Fatalf("parseAnswer(%q) accepted session %q: its data hello parses to %+v, %v", line, w.Session, h, err)
		}
		if strings.Contains(line, "\n") {
			return // no answer line has one: readLine ends it there
		}
		if again, err := parseAnswer(ok(w)); err != nil || again != w {
			t.Fatalf("parseAnswer(%q) = %+v, but its answer %q parses to %+v, %v", line, w, ok(w), again, err)
		}
	})
}

// FuzzHandshake runs the client's hello exchange (Handshake) against a
// server that sends arbitrary bytes and closes, over net.Pipe: an error
// wraps ErrNotServe, ErrVersion or ErrRefused; the handshake succeeds only
// when the server sent exactly one line of at most MaxHelloLen bytes, and
// then returns what parseAnswer makes of it.
func FuzzHandshake(f *testing.F) {
	f.Add(appendOK(nil, Welcome{Session: fuzzSession, Tool: "ipcbench v1.2.3"}))
	f.Add(append(appendOK(nil, Welcome{Session: fuzzSession, Tool: "ipcbench"}), "extra"...))
	f.Add([]byte(ErrorPrefix + "no\n"))
	f.Add([]byte("ipcbench-ok/1 session=a tool=x"))
	f.Add(bytes.Repeat([]byte("a"), MaxHelloLen+1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, server := net.Pipe()
		served := make(chan error, 1)
		go func() {
			defer server.Close()
			if _, err := readLine(server); err != nil {
				served <- err
				return
			}
			server.Write(answer) // fails once the client stopped reading
			served <- nil
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w, err := Handshake(ctx, client, Hello{Kind: KindControl})
		client.Close()
		if serr := <-served; serr != nil {
			t.Fatalf("the server read no hello: %v", serr)
		}
		if err != nil {
			if !errors.Is(err, ErrNotServe) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrRefused) {
				t.Fatalf("Handshake with answer %q: error wraps no sentinel: %v", answer, err)
			}
			return
		}
		if len(answer) > MaxHelloLen || bytes.IndexByte(answer, '\n') != len(answer)-1 {
			t.Fatalf("Handshake accepted %q, which is not one line of at most %d bytes", answer, MaxHelloLen)
		}
		if want, err := parseAnswer(string(answer[:len(answer)-1])); err != nil || want != w {
			t.Fatalf("Handshake with answer %q = %+v; parseAnswer says %+v, %v", answer, w, want, err)
		}
	})
}

// TestHandshakeContextDeadline: a hello left unanswered until ctx's
// deadline, earlier than HelloTimeout, is ctx's deadline, not "not an
// ipcbench serve ... within 5s", whichever of the connection's deadline
// and ctx's noticing comes first.
func TestHandshakeContextDeadline(t *testing.T) {
	for range 20 {
		client, server := net.Pipe()
		go io.Copy(io.Discard, server) // takes the hello, never answers
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_, err := Handshake(ctx, client, Hello{Kind: KindControl})
		cancel()
		client.Close()
		server.Close()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNotServe) || errors.Is(err, ErrHelloUnanswered) {
			t.Fatalf("Handshake past ctx's deadline: %v; want context.DeadlineExceeded, not ErrNotServe", err)
		}
	}
}
