package unix_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
	"github.com/ipcbench/ipcbench/transports/unix"
	"golang.org/x/net/nettest"
)

func TestNetConn(t *testing.T) {
	tests := []struct {
		name string
		cfg  transports.Config
	}{
		{"default", transports.Config{}},
		{"socket path", transports.Config{Address: transporttest.SocketPath(t)}},
		{"small buffers", transports.Config{BufferSize: 4096}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nettest.TestConn(t, transporttest.MakePipe(unix.New(), tt.cfg))
		})
	}
}

func TestName(t *testing.T) {
	if got := unix.New().Name(); got != "unix" {
		t.Fatalf("Name() = %q", got)
	}
}

// TestPrivateDirectory checks where the socket lives without an address,
// its directory's mode, and that Close removes both, also when a
// connection is still open.
func TestPrivateDirectory(t *testing.T) {
	base := t.TempDir()
	t.Setenv("TMPDIR", base)
	ln, err := unix.New().Listen(context.Background(), transports.Config{})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	path := ln.Endpoint().Address
	dir := filepath.Dir(path)
	if filepath.Dir(dir) != base || !strings.HasPrefix(filepath.Base(dir), "ipcbench-unix-") {
		t.Fatalf("socket %s is not in a private directory under %s", path, base)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("stat %s: %v", dir, err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, want 0700", st.Mode().Perm())
	}
	if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket file %s: %v, %v", path, st, err)
	}
	if ln.Addr().String() != path {
		t.Fatalf("Addr() = %v, want %s", ln.Addr(), path)
	}
	c, err := unix.New().Dial(context.Background(), ln.Endpoint())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer a.Close()
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after Close, %s: %v; want it gone", dir, err)
	}
	if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
	// The accepted connection outlives the listener.
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("Write after Listener.Close: %v", err)
	}
	if _, err := a.Read(make([]byte, 1)); err != nil {
		t.Fatalf("Read after Listener.Close: %v", err)
	}
}

// TestListenErrors checks that Listen refuses a socket path it cannot use
// safely, with a clear error, and leaves nothing behind.
func TestListenErrors(t *testing.T) {
	base := t.TempDir()
	if err := os.Chmod(base, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", base)
	long := filepath.Join(base, strings.Repeat("d", unix.MaxPath))
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatalf("write: %v", err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	// In a directory open to others, a file that is not a socket is named
	// as what is wrong with the path; a stale socket is not removed there,
	// and the directory is what is wrong.
	openFile := filepath.Join(open, "file")
	if err := os.WriteFile(openFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	openStale := filepath.Join(open, "stale")
	transporttest.StaleSocket(t, openStale, syscall.SOCK_STREAM)
	private := filepath.Join(base, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(private, link); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(base, "foreign")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		cfg  transports.Config
		want error
		msg  string
	}{
		{"path too long", transports.Config{Address: long}, transports.ErrBadEndpoint, "sun_path"},
		{"no parent directory", transports.Config{Address: filepath.Join(base, "missing", "sub", "s")}, transports.ErrBadEndpoint, "missing"},
		{"parent is a file", transports.Config{Address: filepath.Join(file, "s")}, transports.ErrBadEndpoint, "file"},
		{"path is a file", transports.Config{Address: file}, transports.ErrBadEndpoint, "not a socket"},
		{"path is a directory", transports.Config{Address: private}, transports.ErrBadEndpoint, "not a socket"},
		{"directory open to others", transports.Config{Address: filepath.Join(open, "s")}, transports.ErrBadEndpoint, "0755"},
		{"a file in a directory open to others", transports.Config{Address: openFile}, transports.ErrBadEndpoint, "exists and is not a socket"},
		{"a stale socket in a directory open to others", transports.Config{Address: openStale}, transports.ErrBadEndpoint, "0755"},
		{"directory is a symlink", transports.Config{Address: filepath.Join(link, "s")}, transports.ErrBadEndpoint, "symbolic link"},
		{"an option", transports.Config{Options: map[string]string{"nodelay": "true"}}, transports.ErrBadOption, "nodelay"},
	}
	if os.Geteuid() == 0 {
		tests = append(tests, struct {
			name string
			cfg  transports.Config
			want error
			msg  string
		}{"directory of another user", transports.Config{Address: filepath.Join(foreign, "s")}, transports.ErrBadEndpoint, "uid 65534"})
	}
	before := transporttest.Names(t, base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := unix.New().Listen(context.Background(), tt.cfg)
			// A mistake in the address is not a transport that cannot run
			// here: a program falling back on ErrUnavailable would hide it.
			if !errors.Is(err, tt.want) || errors.Is(err, transports.ErrUnavailable) || !strings.Contains(err.Error(), tt.msg) {
				if ln != nil {
					ln.Close()
				}
				t.Fatalf("Listen: %v; want %v, not ErrUnavailable, mentioning %q", err, tt.want, tt.msg)
			}
			if after := transporttest.Names(t, base); !slices.Equal(before, after) {
				t.Fatalf("Listen left files behind: before %v, after %v", before, after)
			}
		})
	}
}

// TestListenLongTMPDIR: without an address, a socket path too long for
// sun_path comes from this machine's TMPDIR, not from the caller: the
// transport cannot run here (ErrUnavailable), and nothing is left behind.
func TestListenLongTMPDIR(t *testing.T) {
	base := filepath.Join(t.TempDir(), strings.Repeat("d", unix.MaxPath))
	if err := os.Mkdir(base, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", base)
	ln, err := unix.New().Listen(context.Background(), transports.Config{})
	if !errors.Is(err, transports.ErrUnavailable) || errors.Is(err, transports.ErrBadEndpoint) || !strings.Contains(err.Error(), "TMPDIR") {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("Listen with a long TMPDIR: %v; want ErrUnavailable, not ErrBadEndpoint, naming TMPDIR", err)
	}
	if names := transporttest.Names(t, base); len(names) != 0 {
		t.Fatalf("Listen left %v behind", names)
	}
}

// TestSocketPath listens on a path the caller chose: a missing directory is
// made 0700, a socket a dead listener left is replaced, a live listener's
// is refused, and Close removes the socket and the directory it made.
func TestSocketPath(t *testing.T) {
	path := transporttest.SocketPath(t)
	dir := filepath.Dir(path)
	ln, err := unix.New().Listen(context.Background(), transports.Config{Address: path})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("made directory: %v, %v; want mode 0700", st, err)
	}
	if got := ln.Endpoint().Address; got != path {
		t.Fatalf("Endpoint().Address = %q, want %q", got, path)
	}
	if ln2, err := unix.New().Listen(context.Background(), transports.Config{Address: path}); !errors.Is(err, transports.ErrBadEndpoint) || !strings.Contains(err.Error(), "live listener") {
		if ln2 != nil {
			ln2.Close()
		}
		t.Fatalf("second Listen on a live socket: %v; want ErrBadEndpoint naming the live listener", err)
	}
	c, err := unix.New().Dial(context.Background(), ln.Endpoint())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	c.Close()
	if a, err := ln.Accept(); err != nil {
		t.Fatalf("Accept: %v", err)
	} else {
		a.Close()
	}
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after Close, %s: %v; want it gone", dir, err)
	}

	// A stale socket: bound, never listened on, like one a killed
	// listener leaves behind.
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	transporttest.StaleSocket(t, path, syscall.SOCK_STREAM)
	ln, err = unix.New().Listen(context.Background(), transports.Config{Address: path})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Close removed %s, which it did not make: %v", dir, err)
	}
}

func TestDialBadEndpoint(t *testing.T) {
	tests := []struct {
		name string
		ep   transports.Endpoint
	}{
		{"no path", transports.Endpoint{Transport: unix.Name}},
		{"path too long", transports.Endpoint{Transport: unix.Name, Address: "/" + strings.Repeat("x", unix.MaxPath)}},
		{"other transport", transports.Endpoint{Transport: "pipe", Address: "/tmp/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := unix.New().Dial(context.Background(), tt.ep)
			if !errors.Is(err, transports.ErrBadEndpoint) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("Dial: %v, want ErrBadEndpoint", err)
			}
		})
	}
}

// TestDialNobodyListens dials paths nobody listens on and checks the
// sentinels transports.Transport.Dial promises: a closed listener's path
// (gone with it) and a missing one, a stale socket, a regular file.
func TestDialNobodyListens(t *testing.T) {
	ln, err := unix.New().Listen(context.Background(), transports.Config{Address: transporttest.SocketPath(t)})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	closed := ln.Endpoint().Address
	ln.Close()
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale")
	transporttest.StaleSocket(t, stale, syscall.SOCK_STREAM)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A SOCK_SEQPACKET listener, as the rendezvous of pipe and shm-* is.
	packet := filepath.Join(dir, "packet")
	pl, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: packet, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	tests := []struct {
		name          string
		path          string
		want, wantNot []error
	}{
		{"socket of another kind", packet, []error{transports.ErrBadEndpoint, syscall.EPROTOTYPE}, []error{transports.ErrPeerGone, fs.ErrNotExist}},
		{"closed listener", closed, []error{transports.ErrBadEndpoint, fs.ErrNotExist}, []error{transports.ErrPeerGone}},
		{"missing", filepath.Join(dir, "missing"), []error{transports.ErrBadEndpoint, fs.ErrNotExist}, []error{transports.ErrPeerGone}},
		{"stale socket", stale, []error{transports.ErrPeerGone, syscall.ECONNREFUSED}, []error{transports.ErrBadEndpoint}},
		{"regular file", file, []error{transports.ErrBadEndpoint}, []error{transports.ErrPeerGone, syscall.ECONNREFUSED, fs.ErrNotExist}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := unix.New().Dial(context.Background(), transports.Endpoint{Transport: unix.Name, Address: tt.path})
			if err == nil {
				c.Close()
				t.Fatalf("Dial of %s succeeded", tt.path)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Dial: %v; want it to wrap %v", err, w)
				}
			}
			for _, w := range tt.wantNot {
				if errors.Is(err, w) {
					t.Errorf("Dial: %v; want it not to wrap %v", err, w)
				}
			}
			var op *net.OpError
			if !errors.As(err, &op) {
				t.Errorf("Dial: %v is no *net.OpError", err)
			}
			if n := strings.Count(err.Error(), tt.path); n != 1 {
				t.Errorf("Dial: %q names the path %d times, want once", err, n)
			}
		})
	}
}

func TestEffectiveOptions(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		minBuf int
	}{
		{"default", 0, 1},
		{"64 KiB", 65536, 65536},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := transports.Config{Address: transporttest.SocketPath(t), BufferSize: tt.size}
			a, d := transporttest.Pair(t, unix.New(), cfg)
			for side, c := range map[string]net.Conn{"accepted": a, "dialed": d} {
				opts := transporttest.EffectiveOptions(t, c)
				for _, k := range []string{"sndbuf", "rcvbuf"} {
					if v, err := strconv.Atoi(opts[k]); err != nil || v < tt.minBuf {
						t.Errorf("%s: %s=%q, want >= %d", side, k, opts[k], tt.minBuf)
					}
				}
				if _, ok := opts["nodelay"]; ok {
					t.Errorf("%s: unix socket reports nodelay: %v", side, opts)
				}
			}
		})
	}
}

// TestRawIO checks the io=raw variant (see transporttest.RunRawIO).
func TestRawIO(t *testing.T) { transporttest.RunRawIO(t, unix.New()) }
