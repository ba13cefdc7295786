package sockconn

import (
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
)

func TestNoDelay(t *testing.T) {
	tests := []struct {
		opts    map[string]string
		want    bool
		wantErr bool
	}{
		{nil, true, false},
		{map[string]string{}, true, false},
		{map[string]string{"nodelay": "true"}, true, false},
		{map[string]string{"nodelay": "false"}, false, false},
		{map[string]string{"nodelay": ""}, false, true},
		{map[string]string{"nodelay": "0"}, false, true},
		{map[string]string{"nodelay": "False"}, false, true},
	}
	for _, tt := range tests {
		got, err := NoDelay("tcp-x", tt.opts)
		if tt.wantErr {
			if !errors.Is(err, transports.ErrBadOption) {
				t.Errorf("NoDelay(%v) = %v, %v; want ErrBadOption", tt.opts, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NoDelay(%v) = %v, %v; want %v", tt.opts, got, err, tt.want)
		}
	}
}

func TestWrapRejects(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c, err := Wrap(a); !errors.Is(err, ErrNotStream) || c != nil {
		t.Fatalf("Wrap(net.Pipe) = %v, %v; want ErrNotStream", c, err)
	}
}

func TestListenerOptions(t *testing.T) {
	lc := net.ListenConfig{Control: Control(32 << 10)}
	ln, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	m := ListenerOptions(ln)
	for _, k := range []string{"sndbuf", "rcvbuf"} {
		if v, err := strconv.Atoi(m[k]); err != nil || v < 32<<10 {
			t.Errorf("%s = %q, want >= %d", k, m[k], 32<<10)
		}
	}
	if m["multipath"] != "false" {
		t.Errorf("multipath = %q", m["multipath"])
	}
	if Control(0) != nil || Control(-1) != nil {
		t.Error("Control(<=0) is not nil")
	}
}
