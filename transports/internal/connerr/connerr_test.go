package connerr

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
)

func TestPeerGone(t *testing.T) {
	opErr := func(cause error) error {
		return &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", cause)}
	}
	tests := []struct {
		name     string
		in       error
		wantGone bool
		wantIs   error // must still hold after marking
	}{
		{"nil", nil, false, nil},
		{"EOF", io.EOF, false, io.EOF},
		{"closed", &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}, false, net.ErrClosed},
		{"deadline", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, false, os.ErrDeadlineExceeded},
		{"EPIPE", opErr(syscall.EPIPE), true, syscall.EPIPE},
		{"ECONNRESET", opErr(syscall.ECONNRESET), true, syscall.ECONNRESET},
		{"bare EPIPE", syscall.EPIPE, true, syscall.EPIPE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PeerGone(tt.in)
			if tt.in == nil {
				if got != nil {
					t.Fatalf("PeerGone(nil) = %v", got)
				}
				return
			}
			if errors.Is(got, transports.ErrPeerGone) != tt.wantGone {
				t.Fatalf("errors.Is(%v, ErrPeerGone) = %v, want %v", got, !tt.wantGone, tt.wantGone)
			}
			if !errors.Is(got, tt.wantIs) {
				t.Fatalf("errors.Is(%v, %v) lost", got, tt.wantIs)
			}
			if _, wasOp := tt.in.(*net.OpError); wasOp {
				if _, isOp := got.(*net.OpError); !isOp {
					t.Fatalf("%T is no longer a *net.OpError", got)
				}
			}
			if again := PeerGone(got); again.Error() != got.Error() {
				t.Fatalf("marking twice changed the message: %q -> %q", got, again)
			}
		})
	}
}

func TestDial(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	opErr := func(cause error) error {
		return &net.OpError{Op: "dial", Net: "tcp4", Addr: addr, Err: os.NewSyscallError("connect", cause)}
	}
	tests := []struct {
		name          string
		in            error
		want, wantNot []error
		unchanged     bool
	}{
		{"refused", opErr(syscall.ECONNREFUSED), []error{transports.ErrPeerGone, syscall.ECONNREFUSED}, []error{transports.ErrBadEndpoint}, false},
		{"missing", opErr(syscall.ENOENT), []error{transports.ErrBadEndpoint, fs.ErrNotExist, syscall.ENOENT}, []error{transports.ErrPeerGone}, false},
		{"bare refused", syscall.ECONNREFUSED, []error{transports.ErrPeerGone, syscall.ECONNREFUSED}, nil, false},
		{"another kind", opErr(syscall.EPROTOTYPE), []error{transports.ErrBadEndpoint, syscall.EPROTOTYPE}, []error{transports.ErrPeerGone}, false},
		{"denied", opErr(syscall.EACCES), []error{syscall.EACCES}, []error{transports.ErrPeerGone, transports.ErrBadEndpoint}, true},
		{"cancelled", &net.OpError{Op: "dial", Net: "tcp4", Addr: addr, Err: context.Canceled}, []error{context.Canceled}, []error{transports.ErrPeerGone, transports.ErrBadEndpoint}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Dial(tt.in)
			for _, w := range tt.want {
				if !errors.Is(got, w) {
					t.Errorf("errors.Is(%v, %v) = false, want true", got, w)
				}
			}
			for _, w := range tt.wantNot {
				if errors.Is(got, w) {
					t.Errorf("errors.Is(%v, %v) = true, want false", got, w)
				}
			}
			if tt.unchanged && got != tt.in {
				t.Errorf("Dial(%v) = %v, want it unchanged", tt.in, got)
			}
			if _, wasOp := tt.in.(*net.OpError); wasOp {
				if _, isOp := got.(*net.OpError); !isOp {
					t.Errorf("%T is no longer a *net.OpError", got)
				}
				if n := strings.Count(got.Error(), addr.String()); n != 1 {
					t.Errorf("%q names the address %d times, want once", got, n)
				}
			}
			if again := Dial(got); again.Error() != got.Error() {
				t.Errorf("marking twice changed the message: %q -> %q", got, again)
			}
		})
	}
	if Dial(nil) != nil {
		t.Error("Dial(nil) != nil")
	}
}

// TestDialPath connects to what can be at a socket path and checks the
// marks DialPath gives the kernel's error.
func TestDialPath(t *testing.T) {
	dir, err := os.MkdirTemp("", "c")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: stale}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd) // bound, never listened on: a connect is refused
	// A SOCK_SEQPACKET listener, as a pipe or shm-* rendezvous is: a
	// stream connect to it fails with EPROTOTYPE.
	packet := filepath.Join(dir, "packet")
	pl, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: packet, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(stale, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		path          string
		want, wantNot []error
		text          string
	}{
		{"missing", filepath.Join(dir, "missing"), []error{transports.ErrBadEndpoint, fs.ErrNotExist}, []error{transports.ErrPeerGone}, "no such file"},
		{"stale", stale, []error{transports.ErrPeerGone, syscall.ECONNREFUSED}, []error{transports.ErrBadEndpoint}, "connection refused"},
		{"symlink to stale", link, []error{transports.ErrPeerGone, syscall.ECONNREFUSED}, []error{transports.ErrBadEndpoint}, "connection refused"},
		{"socket of another kind", packet, []error{transports.ErrBadEndpoint, syscall.EPROTOTYPE}, []error{transports.ErrPeerGone, fs.ErrNotExist}, "a socket of another kind is bound there"},
		{"regular file", file, []error{transports.ErrBadEndpoint}, []error{transports.ErrPeerGone, syscall.ECONNREFUSED, fs.ErrNotExist}, "not a socket (mode -rw-------)"},
		{"directory", dir, []error{transports.ErrBadEndpoint}, []error{transports.ErrPeerGone, syscall.ECONNREFUSED, fs.ErrNotExist}, "not a socket (mode d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("unix", tt.path)
			if err == nil {
				c.Close()
				t.Fatalf("connect to %s succeeded", tt.path)
			}
			got := DialPath(tt.path, err)
			for _, w := range tt.want {
				if !errors.Is(got, w) {
					t.Errorf("errors.Is(%v, %v) = false, want true", got, w)
				}
			}
			for _, w := range tt.wantNot {
				if errors.Is(got, w) {
					t.Errorf("errors.Is(%v, %v) = true, want false", got, w)
				}
			}
			if _, isOp := got.(*net.OpError); !isOp {
				t.Errorf("%T is not a *net.OpError", got)
			}
			if !strings.Contains(got.Error(), tt.text) || strings.Count(got.Error(), tt.path) != 1 {
				t.Errorf("%q: want %q in it and the path once", got, tt.text)
			}
		})
	}
}
