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
	if c, err := Wrap(a, "pipe"); !errors.Is(err, ErrNotStream) || c != nil {
		t.Fatalf("Wrap(net.Pipe) = %v, %v; want ErrNotStream", c, err)
	}
}

func TestListenerOptions(t *testing.T) {
	lc := net.ListenConfig{Control: Control(32<<10, 32<<10)}
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
	if Control(0, 0) != nil || Control(-1, 0) != nil {
		t.Error("Control(<=0, <=0) is not nil")
	}
}

// TestBuffers checks the sndbuf/rcvbuf options: each overrides the common
// size, units are binary, bad values are ErrBadOption naming the key, and
// the kernel applies what was asked.
func TestBuffers(t *testing.T) {
	for _, tt := range []struct {
		size     int
		opts     map[string]string
		snd, rcv int
	}{
		{0, nil, 0, 0},
		{4096, nil, 4096, 4096},
		{4096, map[string]string{OptSndBuf: "64k"}, 64 << 10, 4096},
		{0, map[string]string{OptRcvBuf: "1MiB"}, 0, 1 << 20},
		{0, map[string]string{OptSndBuf: "100000", OptRcvBuf: "8KiB"}, 100000, 8 << 10},
	} {
		snd, rcv, err := Buffers("t", tt.size, tt.opts)
		if err != nil || snd != tt.snd || rcv != tt.rcv {
			t.Errorf("Buffers(%d, %v) = %d, %d, %v; want %d, %d", tt.size, tt.opts, snd, rcv, err, tt.snd, tt.rcv)
		}
	}
	for _, bad := range []map[string]string{{OptSndBuf: "big"}, {OptRcvBuf: "0"}, {OptRcvBuf: "-4k"}, {OptSndBuf: "9GiB"}} {
		if _, _, err := Buffers("t", 0, bad); !errors.Is(err, transports.ErrBadOption) {
			t.Errorf("Buffers(%v): %v, want ErrBadOption", bad, err)
		}
	}
	lc := net.ListenConfig{Control: Control(16<<10, 256<<10)}
	ln, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	m := ListenerOptions(ln)
	snd, _ := strconv.Atoi(m["sndbuf"])
	rcv, _ := strconv.Atoi(m["rcvbuf"])
	if snd < 16<<10 || rcv < 256<<10 || snd >= rcv {
		t.Errorf("kernel reports sndbuf %d, rcvbuf %d after asking 16 KiB and 256 KiB", snd, rcv)
	}
}
