package unix_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// TestConformance runs the conformance suite, the in-process behaviour
// cases included, each with a directory of its own.
func TestConformance(t *testing.T) {
	transporttest.RunWith(t, unix.New(), transporttest.RunOptions{
		Behaviour: true,
		Setup: func(t *testing.T) transports.Config {
			// Not t.TempDir: its long name would not fit in sun_path.
			dir, err := os.MkdirTemp("", "b")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			return transports.Config{Address: filepath.Join(dir, "s")}
		},
	})
}
