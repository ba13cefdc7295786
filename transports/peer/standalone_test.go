package peer_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// TestServeMainBadArgs: ServeMain refuses what is not "-t SPEC -listen
// ADDRESS" with exit 2 and one line naming the problem, before listening.
func TestServeMainBadArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "unix"}, "want -t SPEC -listen ADDRESS"},
		{[]string{"-t", "unix", "-listen", "/tmp/x", "extra"}, "want -t SPEC -listen ADDRESS"},
		{[]string{"-t", "unix[io=raw", "-listen", "/tmp/x"}, "-t:"},
		{[]string{"-t", "carrier-pigeon", "-listen", "/tmp/x"}, "carrier-pigeon"},
		{[]string{"-t", "unix[io=telepathy]", "-listen", "/tmp/x"}, "telepathy"},
	} {
		var out, errb bytes.Buffer
		if code := peer.ServeMain(context.Background(), tc.args, &out, &errb, lookupTest); code != 2 {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
		if msg := errb.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tc.want) {
			t.Errorf("%q: stderr %q, want one line with %q", tc.args, msg, tc.want)
		}
		if out.Len() > 0 {
			t.Errorf("%q: stdout %q, want nothing", tc.args, out.String())
		}
	}
}

// TestServeMainRefusesFileMapping: shm-*'s mapping=file, which shm's
// Listen refuses by address (a client could shrink the unsealable file and
// crash the server), is a bad -t, exit 2, with nothing made at the address.
func TestServeMainRefusesFileMapping(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rv")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // a server that listened after all stops
	defer cancel()
	var out, errb bytes.Buffer
	if code := peer.ServeMain(ctx, []string{"-t", "shm-ring[mapping=file]", "-listen", filepath.Join(dir, "s")}, &out, &errb, lookupTest); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if msg := errb.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "-t shm-ring[mapping=file]: ") || !strings.Contains(msg, "SIGBUS") {
		t.Errorf("stderr %q, want one line on -t saying why", msg)
	}
	if out.Len() > 0 {
		t.Errorf("stdout %q, want nothing", out.String())
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("made %s (%v)", dir, err)
	}
}

// TestServeMainServes: ServeMain listens where it is told, announces it
// with ListeningPrefix (no handshake: this process is not a started
// peer), accepts a connection and returns 0 once its context ends.
func TestServeMainServes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipcb", "s") // a directory Listen makes, private
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := net.Pipe()
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		done <- peer.ServeMain(ctx, []string{"-t", "unix", "-listen", path}, pw, &errb, lookupTest)
		pw.Close()
	}()
	pr.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 256)
	n, err := pr.Read(buf)
	if err != nil {
		t.Fatalf("reading the listening line: %v (stderr %q)", err, errb.String())
	}
	if got, want := string(buf[:n]), peer.ListeningPrefix+path+"\n"; got != want {
		t.Fatalf("stdout %q, want %q", got, want)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dialing the server: %v", err)
	}
	c.Close()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d, want 0; stderr %q", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeMain did not return after its context ended")
	}
}

// filesOnly is the unix transport whose listeners claim to hand their
// channels down as files, as tcp-veth's do.
type filesOnly struct{ transports.Transport }

func (f filesOnly) Listen(ctx context.Context, cfg transports.Config) (transports.Listener, error) {
	ln, err := f.Transport.Listen(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return filesListener{ln}, nil
}

type filesListener struct{ transports.Listener }

func (l filesListener) Endpoint() transports.Endpoint {
	ep := l.Listener.Endpoint()
	ep.Files = []*os.File{os.Stdin}
	return ep
}

// TestServeMainRefusesFilesOnly: a transport whose listener's channels are
// files, not dialed by address, is refused with exit 2 and one line, and
// nothing is left listening.
func TestServeMainRefusesFilesOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ipcb") // a directory Listen makes, private
	lookup := func(string) (transports.Transport, error) { return filesOnly{unix.New()}, nil }
	// A server that wrongly serves returns 0 when this ends.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if code := peer.ServeMain(ctx, []string{"-t", "unix", "-listen", filepath.Join(dir, "s")}, &out, &errb, lookup); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if msg := errb.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "not dialed by address") {
		t.Errorf("stderr %q, want one line saying it is not dialed by address", msg)
	}
	if out.Len() > 0 {
		t.Errorf("stdout %q, want nothing", out.String())
	}
	if ents, err := os.ReadDir(dir); err != nil && !os.IsNotExist(err) || len(ents) != 0 {
		t.Errorf("%d entries left in the directory (%v), want none", len(ents), err)
	}
}
