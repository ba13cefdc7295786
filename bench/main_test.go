package bench

import (
	"os"
	"testing"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/internal/testpeer"
	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// TestMain makes the test binary its own peer (docs/methodology.md §1:
// tests re-exec through TestMain) and runs the tests inside a private
// network namespace so tcp-public has a non-loopback address that is not
// the host's.
func TestMain(m *testing.M) {
	if peer.IsPeer() {
		testpeer.Act()
	}
	peer.RunIfPeer(all.Lookup)
	if !netns.HasHermeticNetwork() {
		code, exit, err := netns.Enter(os.Args[1:]...)
		if exit {
			os.Exit(code)
		}
		if err != nil {
			os.Stderr.WriteString("bench tests: no private network namespace (" + err.Error() + "): tcp-public cases skip\n")
		}
	}
	os.Exit(runInPrivateTmp(m))
}

// runInPrivateTmp runs the tests with TMPDIR a fresh directory of their
// own, which the peers inherit: the leak checks (transporttest.NoLeaks)
// compare the temporary directory before and after a test, and /tmp
// itself sees the files of every other test binary that runs meanwhile.
func runInPrivateTmp(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "bench-*")
	if err != nil {
		os.Stderr.WriteString("bench tests: making a private temporary directory: " + err.Error() + "\n")
		return 1
	}
	defer os.RemoveAll(tmp)
	os.Setenv("TMPDIR", tmp)
	return m.Run()
}
