package proc

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzCheckHandshake checks checkHandshake, the bench's reader of the
// first line a spawned peer writes: the line HandshakeLine makes for the
// started pid is accepted; an accepted line starts with HandshakePrefix
// and names that pid and HandshakeVersion; and an error message stays
// short (the line is quoted clipped), however long the line.
func FuzzCheckHandshake(f *testing.F) {
	f.Add([]byte(HandshakeLine(42)), 42)
	f.Add([]byte(HandshakeLine(43)), 42)
	f.Add([]byte("ipcbench-peer/2 pid=42"), 42)
	f.Add([]byte("ipcbench-peer/+1 pid=+042"), 42)
	f.Add([]byte("ipcbench-peer/1 pid=-1"), 42)
	f.Add([]byte("ipcbench-peer/1"), 42)
	f.Add([]byte(strings.Repeat("x", 1000)), 1)
	f.Add([]byte{}, 1)
	f.Fuzz(func(t *testing.T, line []byte, pid int) {
		if pid <= 0 {
			pid = 1
		}
		if err := checkHandshake([]byte(HandshakeLine(pid)), pid); err != nil {
			t.Fatalf("HandshakeLine(%d) refused: %v", pid, err)
		}
		err := checkHandshake(line, pid)
		if err != nil {
			if n := len(err.Error()); n > 1024 {
				t.Fatalf("checkHandshake(%.80q...): an error of %d bytes", line, n)
			}
			return
		}
		rest, ok := strings.CutPrefix(string(line), HandshakePrefix)
		ver, p, ok2 := strings.Cut(rest, " pid=")
		v, err1 := strconv.Atoi(ver)
		got, err2 := strconv.Atoi(p)
		if !ok || !ok2 || err1 != nil || err2 != nil || v != HandshakeVersion || got != pid {
			t.Fatalf("checkHandshake(%q, %d) accepted it", line, pid)
		}
	})
}
