package progress

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openPTY returns the two ends of a new pseudo-terminal, closed at
// cleanup; it skips the test where none can be made.
func openPTY(tb testing.TB) (master, slave *os.File) {
	tb.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Skipf("no pseudo-terminal: %v", err)
	}
	tb.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		tb.Skipf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		tb.Skipf("pseudo-terminal number: %v", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Skipf("open pseudo-terminal: %v", err)
	}
	tb.Cleanup(func() { slave.Close() })
	return master, slave
}

// counter is a poll function that counts its calls.
type counter struct {
	calls atomic.Int64
	snap  Snapshot
}

func (c *counter) poll() Snapshot {
	c.calls.Add(1)
	return c.snap
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	_, slave := openPTY(t)
	tests := []struct {
		name string
		w    io.Writer
		want bool
	}{
		{"buffer", &bytes.Buffer{}, false},
		{"discard", io.Discard, false},
		{"regular file", f, false},
		{"pipe", pw, false},
		{"terminal", slave, true},
	}
	for _, tt := range tests {
		if got := IsTerminal(tt.w); got != tt.want {
			t.Errorf("IsTerminal(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestNothingWithoutTerminal checks that nothing is drawn, and poll never
// called, on writers that are not terminals or when disabled.
func TestNothingWithoutTerminal(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	master, slave := openPTY(t)
	var buf bytes.Buffer
	tests := []struct {
		name    string
		w       io.Writer
		enabled bool
		written func() int
	}{
		{"buffer", &buf, true, func() int { return buf.Len() }},
		{"file", f, true, func() int {
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			return int(st.Size())
		}},
		{"pipe", pw, true, func() int {
			pw.Close()
			b, _ := io.ReadAll(pr)
			return len(b)
		}},
		{"terminal but disabled", slave, false, func() int {
			// Poll the master without blocking.
			// (Fd puts the file in blocking mode: call it once.)
			fd := int(master.Fd())
			if err := unix.SetNonblock(fd, true); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 4096)
			n, _ := unix.Read(fd, b)
			return max(n, 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &counter{snap: Snapshot{Done: 1, Total: 3, Label: "x"}}
			d := Start(tt.w, tt.enabled, time.Millisecond, c.poll)
			time.Sleep(20 * time.Millisecond)
			d.Stop()
			if n := tt.written(); n != 0 {
				t.Errorf("%d bytes written", n)
			}
			if n := c.calls.Load(); n != 0 {
				t.Errorf("poll called %d times", n)
			}
		})
	}
}

func TestNilPoll(t *testing.T) {
	_, slave := openPTY(t)
	d := Start(slave, true, time.Millisecond, nil)
	d.Stop()
}

// readAll collects what the terminal shows until the master reports an
// error (the slave side closed).
func readAll(master *os.File) <-chan string {
	out := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				out <- b.String()
				return
			}
		}
	}()
	return out
}

func TestDrawsOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	got := readAll(master)
	var mu sync.Mutex
	snap := Snapshot{Done: 0, Total: 5, Label: "pingpong unix 64B"}
	polled := make(chan struct{}, 100)
	poll := func() Snapshot {
		mu.Lock()
		defer mu.Unlock()
		select {
		case polled <- struct{}{}:
		default:
		}
		return snap
	}
	d := Start(slave, true, time.Millisecond, poll)
	<-polled
	mu.Lock()
	snap = Snapshot{Done: 1, Total: 5, Label: "stream pipe 1KiB"}
	mu.Unlock()
	// Wait for two more polls so the new snapshot has been drawn.
	<-polled
	<-polled
	d.Stop()
	d.Stop()
	slave.Close()
	out := <-got
	t.Logf("terminal output: %q", out)
	for _, want := range []string{"case 1 of 5", "pingpong unix 64B", "case 2 of 5", "stream pipe 1KiB", "elapsed", "ETA"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, out)
		}
	}
	// Stop clears the line: the output ends with a carriage return after
	// blanking it.
	if !strings.HasSuffix(out, "\r") || !strings.Contains(out, "\r     ") {
		t.Errorf("progress line not cleared at Stop; output ends %q", out[max(0, len(out)-40):])
	}
}

func TestStopIdempotentConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	master, slave := openPTY(t)
	got := readAll(master)
	c := &counter{snap: Snapshot{Done: 2, Total: 4}}
	d := Start(slave, true, time.Millisecond, c.poll)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Stop()
		}()
	}
	wg.Wait()
	d.Stop()
	calls := c.calls.Load()
	time.Sleep(10 * time.Millisecond)
	if c.calls.Load() != calls {
		t.Error("poll still called after Stop")
	}
	slave.Close()
	<-got
	var zero Display
	zero.Stop()
	zero.Stop()
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name    string
		s       Snapshot
		elapsed time.Duration
		width   int
		want    string
	}{
		{"start", Snapshot{Done: 0, Total: 10, Label: "a"}, 3 * time.Second, 0, "case 1 of 10  3s elapsed  a"},
		{"eta", Snapshot{Done: 2, Total: 10, Label: "b"}, 10 * time.Second, 0, "case 3 of 10  10s elapsed, ETA 40s  b"},
		{"all done", Snapshot{Done: 10, Total: 10}, 50 * time.Second, 0, "case 10 of 10  50s elapsed, ETA 0s"},
		{"unknown total", Snapshot{Done: 4, Label: "c"}, time.Second, 0, "case 5  1s elapsed  c"},
		{"rounded", Snapshot{Done: 1, Total: 3}, 1499 * time.Millisecond, 0, "case 2 of 3  1s elapsed, ETA 3s"},
		{"cut to width", Snapshot{Done: 0, Total: 2, Label: "long label"}, 0, 45, "case 1 of 2  0s"},
		{"narrow", Snapshot{Done: 0, Total: 2}, 0, 10, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.s, tt.elapsed, tt.width); got != tt.want {
				t.Errorf("describe = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBarMax(t *testing.T) {
	tests := []struct {
		s    Snapshot
		want int
	}{
		{Snapshot{Done: 0, Total: 0}, 1},
		{Snapshot{Done: 3, Total: 10}, 10},
		{Snapshot{Done: 12, Total: 10}, 12},
		{Snapshot{Done: -1, Total: -5}, 1},
	}
	for _, tt := range tests {
		if got := barMax(tt.s); got != tt.want {
			t.Errorf("barMax(%+v) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"héllo", 2, "hé"},
		{"abc", 0, ""},
		{"abc", -4, ""},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
