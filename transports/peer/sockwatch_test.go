package peer

import (
	"context"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// lockedLog is a log's output that tests read while the server writes.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveOnSockets runs Serve on a unix transport listener at dir/s with a
// unix control listener at dir/s.control (dir is made, 0700), looking at its sockets every
// millisecond, until stop.
func serveOnSockets(t *testing.T, dir string) (data, control string, logs *lockedLog, stop func()) {
	t.Helper()
	old := socketWatchEvery
	socketWatchEvery = time.Millisecond
	t.Cleanup(func() { socketWatchEvery = old })
	data, control = filepath.Join(dir, "s"), filepath.Join(dir, "s.control")
	ln, err := unix.New().Listen(t.Context(), transports.Config{Address: data})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := unix.New().Listen(t.Context(), transports.Config{Address: control})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	logs = &lockedLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Serve(ctx, ln, ServeOptions{Control: ctl, Log: log.New(logs, "", 0)})
		done <- err
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return data, control, logs, stop
}

// removedLine is the start of the line Serve logs when the socket at path
// (its control socket, for control) is removed or replaced.
func removedLine(path string, control bool) string {
	if control {
		return "the control socket " + path + " was removed or replaced by another file: new ipcbench run sessions cannot reach this server"
	}
	return "the socket " + path + " was removed or replaced by another file: new clients cannot reach this server there"
}

// TestServeLogsRemovedSocket: a socket file of the server's removed (the
// transport's) or replaced by another socket (the control socket's) is
// logged once each, and the server goes on serving its open connections;
// the replacement is not removed by the server's stop.
func TestServeLogsRemovedSocket(t *testing.T) {
	data, control, logs, stop := serveOnSockets(t, filepath.Join(t.TempDir(), "ipcb"))
	c, err := net.Dial("unix", data) // an echo client, connected before the removal
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	echo := func(when string) {
		t.Helper()
		msg := []byte{0, 0, 0, 2, 'h', 'i'} // length-prefixed framing
		got := make([]byte, len(msg))
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("%s: writing to the open connection: %v", when, err)
		}
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			t.Fatalf("%s: the open connection's echo: %q, %v; want %q", when, got, err, msg)
		}
	}
	// An echo served means the accept loops run, so Serve has taken note
	// of its sockets, which it does before them.
	echo("before the removal")
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(control); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", control)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if l := logs.String(); strings.Contains(l, removedLine(data, false)) && strings.Contains(l, removedLine(control, true)) {
			break
		}
	}
	time.Sleep(50 * time.Millisecond) // about fifty more looks, which must log nothing more
	echo("after the removal")
	stop()
	l := logs.String()
	for p, isControl := range map[string]bool{data: false, control: true} {
		if n := strings.Count(l, removedLine(p, isControl)); n != 1 {
			t.Errorf("%d lines about %s, want 1; log:\n%s", n, p, l)
		}
	}
	if _, err := os.Lstat(control); err != nil {
		t.Errorf("the stop removed the socket that replaced its own: %v", err)
	}
}

// TestServeStopLogsNoRemovedSocket: the server's own stop removes its
// socket files, which is not logged as a removal, however soon after a
// look it comes.
func TestServeStopLogsNoRemovedSocket(t *testing.T) {
	for i := range 20 {
		_, _, logs, stop := serveOnSockets(t, filepath.Join(t.TempDir(), "ipcb"))
		time.Sleep(time.Duration(i%4) * time.Millisecond)
		stop()
		if l := logs.String(); l != "" {
			t.Fatalf("stop %d logged:\n%s", i, l)
		}
	}
}
