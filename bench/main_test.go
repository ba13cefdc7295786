package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// TestMain makes the test binary its own peer (docs/methodology.md §1:
// tests re-exec through TestMain) and runs the tests inside a private
// network namespace so tcp-public has a non-loopback address that is not
// the host's.
func TestMain(m *testing.M) {
	if peer.IsPeer() {
		if dir := os.Getenv(envFailStarts); dir != "" && takeToken(dir) {
			os.Stderr.WriteString("test peer: failing this start on purpose\n")
			os.Exit(1)
		}
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
	os.Exit(m.Run())
}

// envFailStarts names a directory of tokens: a test peer started with it
// in its environment takes one token, if one is left, and then exits
// before its handshake, so tests can make a chosen number of peer starts
// fail (see failPeerStarts).
const envFailStarts = "IPCBENCH_TEST_FAIL_STARTS"

// takeToken removes one file of dir and reports whether it got one. Of
// peers racing for the last token, one wins.
func takeToken(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if os.Remove(filepath.Join(dir, e.Name())) == nil {
			return true
		}
	}
	return false
}
