package bench

import (
	"context"
	"os"
	"testing"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/internal/peer"
	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/transports/all"
)

// TestMain makes the test binary its own peer (docs/methodology.md §1:
// tests re-exec through TestMain) and runs the tests inside a private
// network namespace so tcp-public has a non-loopback address that is not
// the host's.
func TestMain(m *testing.M) {
	if proc.IsPeer() {
		os.Exit(peer.Main(context.Background(), os.Stdin, os.Stdout, os.Stderr, all.Lookup))
	}
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
