package shmring

import (
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// TestMain runs the shared conformance suite's process setup: the test
// binary doubles as the peer, and leak checks follow the tests. The
// transport's own unit tests live with its implementation, in
// transports/internal/shm.
func TestMain(m *testing.M) {
	transporttest.Main(m, transporttest.MainOptions{Transports: []transports.Transport{New()}})
}
