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
	os.Exit(m.Run())
}
