package connerr

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

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
