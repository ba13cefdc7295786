package transporttest

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/ipcbench/ipcbench/transports"
)

// The by-address cases: a listener on an address, dialed with nothing but
// the address (no inherited files), as any process of the same user can.

// Sizes of the by-address cases.
const (
	// addressCycles is how many dial/exchange/close cycles run one after
	// the other on one listener.
	addressCycles = 1000
	// addressConcurrent is how many dials run at once.
	addressConcurrent = 64
	// cycleBytes is the size of the message each cycle exchanges.
	cycleBytes = 1000
)

// envServe makes the test binary a server (see serveHelper): its value is
// the JSON of a serveSpec.
const envServe = "IPCBENCH_TRANSPORTTEST_SERVE"

// serveSpec is what a server helper listens on.
type serveSpec struct {
	Transport string            `json:"transport"`
	Config    transports.Config `json:"config"`
}

// addressListen listens on tr so that the endpoint can be dialed by
// address alone: with Config.Address set to a fresh socket path (unix, and
// the rendezvous of pipe and shm-*), or, when the transport refuses that
// (tcp-localhost takes a loopback host:port, tcp-public an interface),
// with the zero Config. The endpoint must then have an address and no files. It
// returns the listener, closed at the end of the test, and the Config it
// used.
func addressListen(t *testing.T, tr transports.Transport, cfg transports.Config) (transports.Listener, transports.Config) {
	t.Helper()
	ln, cfg := listenOnPath(t, tr, cfg)
	if ep := ln.Endpoint(); ep.Address == "" || len(ep.Files) > 0 {
		t.Fatalf("Listen with Config.Address %q: endpoint has address %q and %d files; want an address and no files", cfg.Address, ep.Address, len(ep.Files))
	}
	return ln, cfg
}

// listenOnPath listens on tr with cfg and Config.Address a fresh socket
// path, or, when the transport refuses that, with cfg as it is; it skips
// the test when the transport is unavailable here. It returns the
// listener, closed at the end of the test, and the Config it used.
func listenOnPath(t *testing.T, tr transports.Transport, cfg transports.Config) (transports.Listener, transports.Config) {
	t.Helper()
	withPath := cfg
	withPath.Address = SocketPath(t)
	ln, err := tr.Listen(t.Context(), withPath)
	if err == nil {
		cfg = withPath
	} else {
		ln, err = tr.Listen(t.Context(), cfg)
	}
	if errors.Is(err, transports.ErrUnavailable) {
		t.Skipf("transport unavailable here: %v", err)
	}
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, cfg
}

// addressOnly is ep without its files: what a process that only knows the
// address dials.
func addressOnly(ep transports.Endpoint) transports.Endpoint {
	return transports.Endpoint{Transport: ep.Transport, Address: ep.Address, BufferSize: ep.BufferSize, Options: ep.Options}
}

// echoServer serves ln with an echo on every connection (AcceptEach).
// It copies through a buffer of its own: io.Copy from a TCP connection to
// itself splices through a pipe from the Go runtime's pool, which outlives
// the case until a garbage collection, and NoLeaks reported its two
// descriptors as left open (on 386, in nearly every run of the address
// cases).
func echoServer(ln net.Listener) (stop func()) {
	return AcceptEach(ln, func(c net.Conn) {
		io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 32<<10))
	})
}

// AcceptEach accepts connections on ln until it is closed and runs handle
// on each in its own goroutine, closing the connection when handle
// returns. The returned function closes ln and every open connection and
// waits for all the goroutines.
func AcceptEach(ln net.Listener, handle func(net.Conn)) (stop func()) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// exchange dials ep, sends one message stamped with id, reads the echo,
// checks every byte, and closes.
func exchange(ctx context.Context, tr transports.Transport, ep transports.Endpoint, id uint64) error {
	c, err := tr.Dial(ctx, ep)
	if err != nil {
		return fmt.Errorf("dial %d: %w", id, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	out := make([]byte, cycleBytes)
	fill(out, id)
	if _, err := c.Write(out); err != nil {
		return fmt.Errorf("write %d: %w", id, err)
	}
	in := make([]byte, cycleBytes)
	if _, err := io.ReadFull(c, in); err != nil {
		return fmt.Errorf("read %d: %w", id, err)
	}
	for i := range in {
		if in[i] != out[i] {
			return fmt.Errorf("connection %d: byte %d is %#x, want %#x", id, i, in[i], out[i])
		}
	}
	return nil
}

// fill writes a pattern that depends on id and the position into b.
func fill(b []byte, id uint64) {
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], id*0x9e3779b97f4a7c15+1)
	for i := range b {
		b[i] = seed[i%8] ^ byte(i) ^ byte(i>>8)
	}
}

// testAddressNettest runs nettest.TestConn over pairs made by address:
// the listener's endpoint has an address and no files (addressListen
// checks), so every Dial goes through the address.
func testAddressNettest(t *testing.T, tr transports.Transport) {
	ln, cfg := addressListen(t, tr, transports.Config{})
	ln.Close()
	nettest.TestConn(t, MakePipe(tr, cfg))
}

// testAddressSequential dials one listener addressCycles times in a row;
// every cycle exchanges one message, checked byte by byte, and closes.
func testAddressSequential(t *testing.T, tr transports.Transport) {
	ln, _ := addressListen(t, tr, transports.Config{})
	stop := echoServer(ln)
	defer stop()
	ep := addressOnly(ln.Endpoint())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for i := range uint64(addressCycles) {
		if err := exchange(ctx, tr, ep, i); err != nil {
			t.Fatalf("cycle %d of %d: %v", i+1, addressCycles, err)
		}
	}
}

// testAddressConcurrent makes addressConcurrent dials at once, each
// exchanging one message, checked byte by byte.
func testAddressConcurrent(t *testing.T, tr transports.Transport) {
	ln, _ := addressListen(t, tr, transports.Config{BufferSize: 64 << 10})
	stop := echoServer(ln)
	defer stop()
	ep := addressOnly(ln.Endpoint())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	errs := make(chan error, addressConcurrent)
	var wg sync.WaitGroup
	for i := range uint64(addressConcurrent) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- exchange(ctx, tr, ep, i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// testAddressMissing dials addresses nobody listens on: a path that does
// not exist, and the address of a listener that was closed. Both must fail
// at once.
func testAddressMissing(t *testing.T, tr transports.Transport) {
	ln, _ := addressListen(t, tr, transports.Config{})
	ep := addressOnly(ln.Endpoint())
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	c, err := tr.Dial(ctx, ep)
	if err == nil {
		c.Close()
		t.Fatalf("Dial of a closed listener's address %s succeeded", ep.Address)
	}
	if ctx.Err() != nil {
		t.Fatalf("Dial of a closed listener's address hung until %v: %v", ctx.Err(), err)
	}
	t.Logf("closed listener: %v", err)
	if !strings.HasPrefix(ep.Address, "/") {
		return // a host:port: the closed listener was the whole case
	}
	ep.Address = filepath.Join(t.TempDir(), "missing", "s")
	c, err = tr.Dial(ctx, ep)
	if err == nil {
		c.Close()
		t.Fatalf("Dial of a missing address %s succeeded", ep.Address)
	}
	if ctx.Err() != nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Dial of a missing address: %v; want an error saying it does not exist", err)
	}
	t.Logf("missing: %v", err)
}

// testAddressNobodyListens dials addresses nobody listens on and checks
// the errors transports.Transport.Dial promises, so that a program can
// tell "nobody there (yet)" from a mistake on every transport alike: a
// closed listener's address (a TCP port: ErrPeerGone and
// syscall.ECONNREFUSED; a socket path, which Close removed: ErrBadEndpoint
// and fs.ErrNotExist) and, for a transport that dials socket paths, a
// missing path, a stale socket file (ErrPeerGone and ECONNREFUSED) and a
// regular file (ErrBadEndpoint alone). Each dial must fail at once with
// an error that names the address once.
func testAddressNobodyListens(t *testing.T, tr transports.Transport) {
	ln, _ := addressListen(t, tr, transports.Config{})
	ep := addressOnly(ln.Endpoint())
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var (
		missing    = []error{transports.ErrBadEndpoint, fs.ErrNotExist}
		notMissing = []error{transports.ErrPeerGone, syscall.ECONNREFUSED}
		refused    = []error{transports.ErrPeerGone, syscall.ECONNREFUSED}
		notRefused = []error{transports.ErrBadEndpoint, fs.ErrNotExist}
	)
	type dial struct {
		what, address string
		want, not     []error
	}
	var dials []dial
	if !strings.HasPrefix(ep.Address, "/") {
		dials = append(dials, dial{"a closed listener's port", ep.Address, refused, notRefused})
	} else {
		dir, err := os.MkdirTemp("", "n") // 0700, short enough for sun_path
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		stale := filepath.Join(dir, "stale")
		StaleSocket(t, stale, syscall.SOCK_STREAM)
		file := filepath.Join(dir, "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		dials = append(dials,
			dial{"a closed listener's path", ep.Address, missing, notMissing},
			dial{"a missing path", filepath.Join(dir, "missing", "s"), missing, notMissing},
			dial{"a stale socket", stale, refused, notRefused},
			dial{"a regular file", file, []error{transports.ErrBadEndpoint}, []error{transports.ErrPeerGone, syscall.ECONNREFUSED, fs.ErrNotExist}},
		)
	}
	for _, d := range dials {
		ctx, cancel := context.WithTimeout(t.Context(), hang)
		dep := ep
		dep.Address = d.address
		c, err := tr.Dial(ctx, dep)
		hung := ctx.Err() != nil
		cancel()
		switch {
		case err == nil:
			c.Close()
			t.Errorf("Dial of %s %s succeeded", d.what, d.address)
			continue
		case hung:
			t.Errorf("Dial of %s %s hung until %v: %v", d.what, d.address, hang, err)
			continue
		}
		for _, w := range d.want {
			if !errors.Is(err, w) {
				t.Errorf("Dial of %s: %v; want it to wrap %q", d.what, err, w)
			}
		}
		for _, w := range d.not {
			if errors.Is(err, w) {
				t.Errorf("Dial of %s: %v; want it not to wrap %q", d.what, err, w)
			}
		}
		if n := strings.Count(err.Error(), d.address); n != 1 {
			t.Errorf("Dial of %s: %q names the address %d times, want once", d.what, err, n)
		}
		t.Logf("%s: %v", d.what, err)
	}
}

// testAddressBadListen checks that Listen refuses addresses it cannot
// listen on with an error wrapping transports.ErrBadEndpoint and not
// transports.ErrUnavailable (a program that falls back on a transport
// that cannot run here must not hide a mistake in the address), and
// leaves nothing behind. A transport that listens on a host:port refuses
// the socket paths too (they are no host) and a bad port.
func testAddressBadListen(t *testing.T, tr transports.Transport) {
	ln, _ := addressListen(t, tr, transports.Config{})
	hostPort := !strings.HasPrefix(ln.Endpoint().Address, "/")
	ln.Close()
	dir, err := os.MkdirTemp("", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		filepath.Join(dir, "rv", strings.Repeat("s", 108)), // longer than sun_path
		filepath.Join(dir, "missing", "rv", "s"),
		filepath.Join(open, "s"),
		file,
	}
	if hostPort {
		bad = append(bad, "127.0.0.1:99999", ":99999")
	}
	names := func() []string { return append(Names(t, dir), Names(t, open)...) }
	before := names()
	for _, addr := range bad {
		ln, err := tr.Listen(t.Context(), transports.Config{Address: addr})
		if err == nil {
			ln.Close()
			t.Errorf("Listen on %s succeeded, want ErrBadEndpoint", addr)
			continue
		}
		if !errors.Is(err, transports.ErrBadEndpoint) || errors.Is(err, transports.ErrUnavailable) {
			t.Errorf("Listen on %s: %v; want ErrBadEndpoint and not ErrUnavailable", addr, err)
		}
		if after := names(); !slices.Equal(before, after) {
			t.Fatalf("Listen on %s left files behind: before %v, after %v", addr, before, after)
		}
	}
}

// testAddressInUse listens a second time on the address of a live
// listener: the second Listen must fail with an error that is both
// syscall.EADDRINUSE and ErrBadEndpoint (a mistake in the address, which
// another address fixes), not ErrUnavailable, and that names the address;
// the first listener must go on serving, its address dialed as before,
// and must not have been handed a connection by the refused Listen (its
// first accepted connection is the dial after it, reading what it sent).
func testAddressInUse(t *testing.T, tr transports.Transport) {
	ln, cfg := addressListen(t, tr, transports.Config{})
	ep := addressOnly(ln.Endpoint())
	cfg.Address = ep.Address // a host:port with the port the first one got
	second, err := tr.Listen(t.Context(), cfg)
	if err == nil {
		second.Close()
		t.Fatalf("a second Listen on %s, where a listener listens, succeeded", ep.Address)
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !errors.Is(err, transports.ErrBadEndpoint) || errors.Is(err, transports.ErrUnavailable) {
		t.Errorf("a second Listen on %s: %v; want EADDRINUSE and ErrBadEndpoint, not ErrUnavailable", ep.Address, err)
	}
	if !strings.Contains(err.Error(), ep.Address) {
		t.Errorf("a second Listen on %s: %q does not name the address", ep.Address, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	c, err := tr.Dial(ctx, ep)
	if err != nil {
		t.Fatalf("Dial of the first listener after the failed Listen: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hang))
	out := []byte("still there")
	if _, err := c.Write(out); err != nil {
		t.Fatalf("write: %v", err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		a, err := ln.Accept()
		if err != nil {
			t.Errorf("Accept of the first listener: %v", err)
		}
		accepted <- a
	}()
	var a net.Conn
	select {
	case a = <-accepted:
	case <-ctx.Done():
		ln.Close() // ends the Accept
		<-accepted
		t.Fatalf("the first listener accepted nothing in %v", hang)
	}
	if a == nil {
		return
	}
	defer a.Close()
	a.SetDeadline(time.Now().Add(hang))
	in := make([]byte, len(out))
	if n, err := io.ReadFull(a, in); err != nil || string(in) != string(out) {
		t.Fatalf("the first listener's first connection after the failed Listen read %q, %v; want the dialer's %q (the failed Listen connected to it)", in[:n], err, out)
	}
	if _, err := a.Write(in); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if _, err := io.ReadFull(c, in); err != nil || string(in) != string(out) {
		t.Fatalf("echo from the first listener: %q, %v", in, err)
	}
}

// testAddressReplaced: a listener whose socket file was removed, and
// whose path a second listener then took, must leave the second one's
// socket alone when it closes: a socket path is a name, and removing it
// by name on close took the newer listener's away. Transports whose
// address is no file (tcp-*) skip.
func testAddressReplaced(t *testing.T, tr transports.Transport) {
	first, cfg := addressListen(t, tr, transports.Config{})
	if cfg.Address == "" {
		t.Skip("the address is not a socket file")
	}
	path := first.Endpoint().Address
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	second, err := tr.Listen(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Listen on %s after the first listener's socket was removed: %v", path, err)
	}
	defer second.Close()
	if err := first.Close(); err != nil {
		t.Errorf("closing the first listener: %v", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("closing the first listener removed the second's socket: %v", err)
	}
	stop := echoServer(second)
	defer stop()
	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	if err := exchange(ctx, tr, addressOnly(second.Endpoint()), 1); err != nil {
		t.Fatalf("an exchange with the second listener: %v", err)
	}
	if err := second.Close(); err != nil {
		t.Errorf("closing the second listener: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the second listener's socket after its Close: %v; want it removed", err)
	}
}

// testAddressServerKilled runs the listener in a server process, dials it
// by address, and kills the server with SIGKILL: the connections must then
// fail with transports.ErrPeerGone or io.EOF (the case fails only when a
// call is still blocked after hang, and logs the time against promise), a
// new dial must fail at once, and a new Listen on the same address must
// work (it sweeps what the dead server left).
func testAddressServerKilled(t *testing.T, tr transports.Transport) {
	probe, cfg := addressListen(t, tr, transports.Config{})
	probe.Close()
	srv := startServer(t, tr, cfg, nil)
	ep := addressOnly(srv.ep)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const n = 4
	var conns []net.Conn
	for i := range uint64(n) {
		c, err := tr.Dial(ctx, ep)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		t.Cleanup(func() { c.Close() })
		out := make([]byte, cycleBytes)
		fill(out, i)
		if _, err := c.Write(out); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		in := make([]byte, cycleBytes)
		if _, err := io.ReadFull(c, in); err != nil || string(in) != string(out) {
			t.Fatalf("echo %d: %v", i, err)
		}
	}
	results := make(chan error, n)
	for _, c := range conns {
		go func() {
			c.SetReadDeadline(time.Now().Add(hang))
			_, err := c.Read(make([]byte, 1))
			results <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the reads block
	start := time.Now()
	srv.kill()
	for range n {
		err := <-results
		took := time.Since(start)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatalf("Read still blocked %v after the server was killed", hang)
		case !errors.Is(err, transports.ErrPeerGone) && !errors.Is(err, io.EOF):
			t.Fatalf("Read after the server was killed: %v; want ErrPeerGone or io.EOF", err)
		}
		if took > promise {
			t.Logf("noticed the death after %v, more than the %v promised (a loaded machine?)", took, promise)
		}
	}
	dctx, dcancel := context.WithTimeout(ctx, hang)
	defer dcancel()
	if c, err := tr.Dial(dctx, ep); err == nil {
		c.Close()
		t.Fatal("Dial of the killed server's address succeeded")
	} else if dctx.Err() != nil {
		t.Fatalf("Dial of the killed server's address hung: %v", err)
	} else {
		t.Logf("stale address: %v", err)
	}
	ln, err := tr.Listen(ctx, cfg)
	if err != nil {
		t.Fatalf("Listen on the killed server's address: %v", err)
	}
	stop := echoServer(ln)
	defer stop()
	if err := exchange(ctx, tr, addressOnly(ln.Endpoint()), 7); err != nil {
		t.Fatalf("after a new Listen on the same address: %v", err)
	}
}

// testAddressForeign dials a server of another user (uid 65534), which
// must fail at once with an error; it needs root to start that server.
func testAddressForeign(t *testing.T, tr transports.Transport) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process as another user")
	}
	probe, cfg := addressListen(t, tr, transports.Config{})
	probe.Close()
	if cfg.Address != "" {
		// A directory the other user owns, in one it can reach (the
		// private temporary directory is closed to it).
		top, err := os.MkdirTemp("/tmp", "ipcbench-transporttest-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(top) })
		if err := os.Chmod(top, 0o755); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(top, "foreign")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cfg.Address = filepath.Join(dir, "s")
	}
	srv := startServer(t, tr, cfg, &syscall.Credential{Uid: 65534, Gid: 65534})
	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	c, err := tr.Dial(ctx, addressOnly(srv.ep))
	if err == nil {
		// Sockets over TCP carry no credentials: the other user's server
		// is reachable, as it is for any TCP client.
		c.Close()
		if !strings.HasPrefix(srv.ep.Address, "/") {
			t.Skipf("%s has no notion of the listener's user", tr.Name())
		}
		t.Fatalf("Dial of a server running as uid 65534 succeeded")
	}
	if ctx.Err() != nil {
		t.Fatalf("Dial of another user's server hung: %v", err)
	}
	if !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("Dial of another user's server: %v; want an error naming uid 65534", err)
	}
	t.Logf("refused: %v", err)
	srv.kill()
}

// server is a server helper process.
type server struct {
	cmd *exec.Cmd
	ep  transports.Endpoint
}

// startServer starts the test binary as a server helper listening on tr
// with cfg (as the user cred when set) and waits for its endpoint. The
// process is killed at the end of the test.
func startServer(t *testing.T, tr transports.Transport, cfg transports.Config, cred *syscall.Credential) *server {
	t.Helper()
	spec, err := json.Marshal(serveSpec{Transport: tr.Name(), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		exe = WorldExecutable(t)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envServe+"="+string(spec))
	cmd.Stderr = os.Stderr
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the server: %v", err)
	}
	s := &server{cmd: cmd}
	t.Cleanup(s.kill)
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if err := json.Unmarshal([]byte(l), &s.ep); err != nil {
			t.Fatalf("server said %q instead of its endpoint", l)
		}
	case <-time.After(hang):
		t.Fatal("the server did not report its endpoint")
	}
	return s
}

// kill kills the server with SIGKILL and reaps it; a second call does
// nothing.
func (s *server) kill() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// WorldExecutable copies the running test binary where another user can
// run it (the build directory is private) and returns its path; the copy
// is removed at the end of the test. Its directory is in /tmp, named
// "ipcbench-transporttest-*" (never like a socket directory that a stale
// sweep would take for a dead process's).
func WorldExecutable(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("/tmp", "ipcbench-transporttest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.Base(self))
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveHelper is the server helper's body: it listens as envServe says,
// prints the endpoint's JSON on one line, and echoes every connection
// until it is killed. ran is false when the process is not a server
// helper.
func serveHelper(list []transports.Transport) (code int, ran bool) {
	v := os.Getenv(envServe)
	if v == "" {
		return 0, false
	}
	var spec serveSpec
	if err := json.Unmarshal([]byte(v), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "server helper: %v\n", err)
		return 2, true
	}
	tr, err := lookup(list)(spec.Transport)
	if err != nil {
		fmt.Fprintf(os.Stderr, "server helper: %v\n", err)
		return 2, true
	}
	ln, err := tr.Listen(context.Background(), spec.Config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "server helper: listen: %v\n", err)
		return 1, true
	}
	ep := ln.Endpoint()
	ep.Files = nil
	b, _ := json.Marshal(ep)
	fmt.Printf("%s\n", b)
	stop := echoServer(ln)
	defer stop()
	for {
		time.Sleep(time.Hour) // until killed
	}
}
