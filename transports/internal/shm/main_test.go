package shm

import (
	"os"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// TestMain runs the shared conformance suite's process setup (the test
// binary doubles as the peer; leak checks after the tests) and this
// package's own child modes (see runChild).
func TestMain(m *testing.M) {
	transporttest.Main(m, transporttest.MainOptions{
		Transports: []transports.Transport{New(Lock), New(Ring)},
		Helper: func() (int, bool) {
			if mode := os.Getenv(childEnv); mode != "" {
				return runChild(mode), true
			}
			return 0, false
		},
	})
}
