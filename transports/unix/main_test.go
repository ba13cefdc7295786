package unix_test

import (
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// TestMain makes the test binary double as the peer process of the
// cross-process conformance suite (see transporttest.Main).
func TestMain(m *testing.M) {
	transporttest.Main(m, transporttest.MainOptions{Transports: []transports.Transport{unix.New()}, Helper: helper})
}
