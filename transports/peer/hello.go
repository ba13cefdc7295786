package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ipcbench/ipcbench/transports/internal/ctxdeadline"
)

// ProtocolVersion is the version of the hello and control protocol a
// stand-alone peer speaks. A client and a server of different versions
// refuse each other.
const ProtocolVersion = 1

// Hello line prefixes.
const (
	// HelloPrefix starts every hello line; the version follows.
	HelloPrefix = "ipcbench-hello/"
	// OKPrefix starts an accepting answer; the version follows.
	OKPrefix = "ipcbench-ok/"
	// ErrorPrefix starts a refusing answer; the reason follows.
	ErrorPrefix = "ipcbench-error "
)

// Hello kinds.
const (
	KindControl = "control" // the connection carries jobs and replies
	KindData    = "data"    // the connection carries a session's workload
)

// MaxHelloLen is the longest hello or answer line, newline included.
const MaxHelloLen = 512

// HelloTimeout bounds the exchange of hello and answer once it started.
const HelloTimeout = 5 * time.Second

// Errors of the hello exchange.
var (
	// ErrVersion means the two sides speak different protocol versions.
	ErrVersion = errors.New("protocol version mismatch")
	// ErrNotServe means the other side does not speak the hello protocol
	// (it is not an ipcbench serve, or not an ipcbench client), or, on the
	// client's side, that it closed the connection or stayed silent
	// instead of answering, which a serve that is stopped or died also
	// does (the error's text then says so).
	ErrNotServe = errors.New("not an ipcbench serve")
	// ErrRefused means the server answered the hello with an error.
	ErrRefused = errors.New("refused by the server")
	// ErrHelloUnanswered means the other side took the connection but did
	// not answer the hello within HelloTimeout (a stopped or stuck
	// server, or one that does not speak the protocol and waits for more);
	// it comes wrapped with ErrNotServe.
	ErrHelloUnanswered = errors.New("no answer to the hello")
)

// Hello is one hello line.
type Hello struct {
	// Version is the sender's ProtocolVersion.
	Version int
	// Kind is KindControl or KindData.
	Kind string
	// Session is the session id (KindData).
	Session string
	// Conn is the connection's index in its session's serve job (KindData).
	Conn int
}

// AppendLine appends the hello line of h, newline included, to dst.
func (h Hello) AppendLine(dst []byte) []byte {
	dst = append(dst, HelloPrefix...)
	dst = strconv.AppendInt(dst, int64(h.Version), 10)
	dst = append(dst, ' ')
	dst = append(dst, h.Kind...)
	if h.Kind == KindData {
		dst = append(dst, " session="...)
		dst = append(dst, h.Session...)
		dst = append(dst, " conn="...)
		dst = strconv.AppendInt(dst, int64(h.Conn), 10)
	}
	return append(dst, '\n')
}

// ParseHello parses a hello line without its newline. A line of another
// protocol version gives an error wrapping ErrVersion (with that version
// in the Hello); anything else that is not a hello, one wrapping
// ErrNotServe, whose text says what it is from the server's side: "not an
// ipcbench hello: ...".
func ParseHello(line string) (Hello, error) {
	rest, ok := strings.CutPrefix(line, HelloPrefix)
	if !ok {
		return Hello{}, notHellof("line %.80q is not a hello", line)
	}
	fields := strings.Fields(rest)
	if len(fields) < 2 {
		return Hello{}, notHellof("hello %.80q has no kind", line)
	}
	v, err := strconv.Atoi(fields[0])
	if err != nil || v <= 0 {
		return Hello{}, notHellof("hello %.80q has no version", line)
	}
	h := Hello{Version: v, Kind: fields[1]}
	if v != ProtocolVersion {
		return h, fmt.Errorf("%w: the client speaks %s%d, this server %s%d", ErrVersion, HelloPrefix, v, HelloPrefix, ProtocolVersion)
	}
	switch h.Kind {
	case KindControl:
		if len(fields) != 2 {
			return h, notHellof("control hello %.80q has extra fields", line)
		}
	case KindData:
		if len(fields) != 4 {
			return h, notHellof("data hello %.80q wants session= and conn=", line)
		}
		s, ok1 := strings.CutPrefix(fields[2], "session=")
		c, ok2 := strings.CutPrefix(fields[3], "conn=")
		n, err := strconv.Atoi(c)
		if !ok1 || !ok2 || s == "" || err != nil || n < 0 {
			return h, notHellof("data hello %.80q wants session=<id> conn=<index>", line)
		}
		h.Session, h.Conn = s, n
	default:
		return h, notHellof("hello kind %.40q (want %s or %s)", h.Kind, KindControl, KindData)
	}
	return h, nil
}

// notHello is the error of a line that is not a hello, as the server that
// read it sees it: its client does not speak the protocol. It wraps
// ErrNotServe, the same mismatch seen from the client's side, which is
// what errors.Is has always matched; only its text is the server's.
type notHello struct{ reason string }

func notHellof(format string, args ...any) error {
	return &notHello{reason: fmt.Sprintf(format, args...)}
}

func (e *notHello) Error() string { return "not an ipcbench hello: " + e.reason }

func (e *notHello) Is(target error) bool { return target == ErrNotServe }

// Welcome is a server's accepting answer.
type Welcome struct {
	// Session is the session id: new for a control hello, the one named
	// for a data hello.
	Session string
	// Tool is the server's "ipcbench <version>".
	Tool string
}

// appendOK appends the accepting answer, newline included.
func appendOK(dst []byte, w Welcome) []byte {
	dst = append(dst, OKPrefix...)
	dst = strconv.AppendInt(dst, ProtocolVersion, 10)
	dst = append(dst, " session="...)
	dst = append(dst, w.Session...)
	dst = append(dst, " tool="...)
	dst = append(dst, strings.ReplaceAll(w.Tool, "\n", " ")...)
	return append(dst, '\n')
}

// parseAnswer parses a server's answer line (without its newline).
func parseAnswer(line string) (Welcome, error) {
	if reason, ok := strings.CutPrefix(line, ErrorPrefix); ok {
		return Welcome{}, &refusal{reason: reason, version: strings.Contains(reason, ErrVersion.Error())}
	}
	if strings.HasPrefix(line, HelloPrefix) {
		return Welcome{}, fmt.Errorf("%w: it sent the hello back (an echo server? use -peer echo)", ErrNotServe)
	}
	rest, ok := strings.CutPrefix(line, OKPrefix)
	if !ok {
		return Welcome{}, fmt.Errorf("%w: it answered %.80q", ErrNotServe, line)
	}
	v, rest, _ := strings.Cut(rest, " ")
	if n, err := strconv.Atoi(v); err != nil || n != ProtocolVersion {
		return Welcome{}, fmt.Errorf("%w: the server speaks %s%s, this client %s%d", ErrVersion, OKPrefix, v, OKPrefix, ProtocolVersion)
	}
	s, tool, ok := strings.Cut(rest, " tool=")
	id, ok2 := strings.CutPrefix(s, "session=")
	if !ok || !ok2 || id == "" {
		return Welcome{}, fmt.Errorf("%w: malformed answer %.80q", ErrNotServe, line)
	}
	if !validSession(id) {
		return Welcome{}, fmt.Errorf("%w: answer %.80q: the session id is not 1 to %d printable ASCII characters without spaces", ErrNotServe, line, maxSessionLen)
	}
	return Welcome{Session: id, Tool: tool}, nil
}

// maxSessionLen bounds the session id a client takes from an answer: a
// server makes 32 hex digits, and every data hello the client sends with
// the id must fit in MaxHelloLen.
const maxSessionLen = 64

// validSession reports whether id can travel in a data hello as one
// field: 1 to maxSessionLen printable ASCII characters, none a space.
func validSession(id string) bool {
	if id == "" || len(id) > maxSessionLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// refusal is a server's error answer; it wraps ErrRefused, and ErrVersion
// when the reason is a version mismatch.
type refusal struct {
	reason  string
	version bool
}

func (r *refusal) Error() string { return ErrRefused.Error() + ": " + r.reason }

func (r *refusal) Is(target error) bool {
	return target == ErrRefused || (r.version && target == ErrVersion)
}

// Handshake sends h on c and reads the server's answer, within
// HelloTimeout (or ctx's deadline, if earlier). Nothing else may be
// written on c before it returns. A refusal wraps ErrRefused (and
// ErrVersion when the versions differ); a server that does not speak the
// protocol ErrNotServe, and one that does not answer within HelloTimeout
// ErrNotServe and ErrHelloUnanswered. When ctx ends first, the error
// wraps ctx's (context.DeadlineExceeded for its deadline).
func Handshake(ctx context.Context, c net.Conn, h Hello) (Welcome, error) {
	h.Version = ProtocolVersion
	until := time.Now().Add(HelloTimeout)
	ctxFirst := false // ctx's deadline comes before HelloTimeout's
	if d, ok := ctx.Deadline(); ok && d.Before(until) {
		until, ctxFirst = d, true
	}
	c.SetDeadline(until)
	stop := ctxdeadline.OnDone(ctx, c.SetDeadline)
	defer func() {
		stop() // ctx's deadline, if it fired, is set before it is cleared
		c.SetDeadline(time.Time{})
	}()
	// past reports whether err is the connection's deadline passing when
	// that deadline was ctx's, which ctx.Err() may not say yet: the two
	// fire at the same moment.
	past := func(err error) bool {
		var ne net.Error
		return ctx.Err() != nil || (ctxFirst && errors.As(err, &ne) && ne.Timeout())
	}
	if _, err := c.Write(h.AppendLine(make([]byte, 0, 128))); err != nil {
		if past(err) {
			return Welcome{}, fmt.Errorf("sending hello: %w", context.DeadlineExceeded)
		}
		// A server that refuses a connection without reading it (serve
		// at its -max-conns) answers and closes at once, so the hello's
		// write can fail with the reason already waiting to be read.
		if line, rerr := readLine(c); rerr == nil && strings.HasPrefix(line, ErrorPrefix) {
			return parseAnswer(line)
		}
		return Welcome{}, fmt.Errorf("sending hello: %w", err)
	}
	line, err := readLine(c)
	if err != nil {
		if ctx.Err() != nil {
			return Welcome{}, fmt.Errorf("waiting for the answer to hello: %w", ctx.Err())
		}
		if past(err) {
			return Welcome{}, fmt.Errorf("waiting for the answer to hello: %w", context.DeadlineExceeded)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
			return Welcome{}, unanswered{errors.New("it closed the connection instead of answering the hello (an echo server? use -peer echo; or the serve there stopped or died just then)")}
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return Welcome{}, unanswered{fmt.Errorf("%w within %v (a server of another protocol that waits for more, or a serve that is stopped or stuck)", ErrHelloUnanswered, HelloTimeout)}
		}
		return Welcome{}, fmt.Errorf("waiting for the answer to hello: %w", err)
	}
	return parseAnswer(line)
}

// unanswered is the ErrNotServe of a hello that got no answer at all, a
// close or silence: a server of another protocol does that, and so does a
// serve that died or is stopped, so its text does not claim the first.
type unanswered struct{ err error }

func (e unanswered) Error() string        { return "no ipcbench serve answered: " + e.err.Error() }
func (e unanswered) Unwrap() error        { return e.err }
func (e unanswered) Is(target error) bool { return target == ErrNotServe }

// readLine reads one line of at most MaxHelloLen bytes from r, returning
// it without its newline. It reads no further than the newline only
// because the other side sends nothing after it before an answer; bytes
// after the newline are an error. A line that is no answer gives an error
// wrapping ErrNotServe.
func readLine(r io.Reader) (string, error) {
	buf := make([]byte, MaxHelloLen)
	return finishLine(r, buf, 0, func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrNotServe}, args...)...)
	})
}

// finishLine reads into buf after its first n bytes until a newline. A
// line that breaks the protocol's rules gives bad's error: the client's
// ErrNotServe, or the server's notHello.
func finishLine(r io.Reader, buf []byte, n int, bad func(format string, args ...any) error) (string, error) {
	for {
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			if i != n-1 {
				return "", bad("%d bytes followed the line before it was answered", n-1-i)
			}
			return string(buf[:i]), nil
		}
		if n == len(buf) {
			return "", bad("no newline within %d bytes", len(buf))
		}
		k, err := r.Read(buf[n:])
		n += k
		if err != nil && k == 0 {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
}
