package unix

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
	"golang.org/x/net/nettest"
)

func TestNetConn(t *testing.T) {
	tests := []struct {
		name string
		cfg  transports.Config
	}{
		{"default", transports.Config{}},
		{"own directory", transports.Config{Address: t.TempDir()}},
		{"small buffers", transports.Config{BufferSize: 4096}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nettest.TestConn(t, transporttest.MakePipe(New(), tt.cfg))
		})
	}
}

func TestName(t *testing.T) {
	if got := New().Name(); got != "unix" {
		t.Fatalf("Name() = %q", got)
	}
}

// TestPrivateDirectory checks where the socket lives, its directory's mode,
// and that Close removes both, also when a connection is still open.
func TestPrivateDirectory(t *testing.T) {
	base := t.TempDir()
	ln, err := New().Listen(context.Background(), transports.Config{Address: base})
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
	c, err := New().Dial(context.Background(), ln.Endpoint())
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

func TestListenErrors(t *testing.T) {
	base := t.TempDir()
	// A directory whose socket path cannot fit in sun_path.
	long := filepath.Join(base, strings.Repeat("d", MaxPath-len(base)-10))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	notDir := filepath.Join(base, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatalf("write: %v", err)
	}
	tests := []struct {
		name string
		cfg  transports.Config
		want error
		msg  string
	}{
		{"path too long", transports.Config{Address: long}, transports.ErrUnavailable, "sun_path"},
		{"no such directory", transports.Config{Address: filepath.Join(base, "missing")}, transports.ErrUnavailable, "missing"},
		{"not a directory", transports.Config{Address: notDir}, transports.ErrUnavailable, "file"},
		{"an option", transports.Config{Address: base, Options: map[string]string{"nodelay": "true"}}, transports.ErrBadOption, "nodelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := New().Listen(context.Background(), tt.cfg)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				if ln != nil {
					ln.Close()
				}
				t.Fatalf("Listen: %v; want %v mentioning %q", err, tt.want, tt.msg)
			}
			// Nothing is left behind.
			for _, d := range []string{base, long} {
				ents, err := os.ReadDir(d)
				if err != nil {
					t.Fatalf("read %s: %v", d, err)
				}
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), "ipcbench-unix-") {
						t.Fatalf("left behind: %s", filepath.Join(d, e.Name()))
					}
				}
			}
		})
	}
}

func TestDialBadEndpoint(t *testing.T) {
	tests := []struct {
		name string
		ep   transports.Endpoint
	}{
		{"no path", transports.Endpoint{Transport: Name}},
		{"path too long", transports.Endpoint{Transport: Name, Address: "/" + strings.Repeat("x", MaxPath)}},
		{"other transport", transports.Endpoint{Transport: "pipe", Address: "/tmp/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New().Dial(context.Background(), tt.ep)
			if !errors.Is(err, transports.ErrBadEndpoint) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("Dial: %v, want ErrBadEndpoint", err)
			}
		})
	}
}

func TestDialGone(t *testing.T) {
	ln, err := New().Listen(context.Background(), transports.Config{Address: t.TempDir()})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ep := ln.Endpoint()
	ln.Close()
	c, err := New().Dial(context.Background(), ep)
	if err == nil {
		c.Close()
		t.Fatal("Dial of a closed listener succeeded")
	}
	var op *net.OpError
	if !errors.As(err, &op) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Dial of a closed listener: %v, want a *net.OpError saying the socket does not exist", err)
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
			cfg := transports.Config{Address: t.TempDir(), BufferSize: tt.size}
			a, d := transporttest.Pair(t, New(), cfg)
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
func TestRawIO(t *testing.T) { transporttest.RunRawIO(t, New()) }
