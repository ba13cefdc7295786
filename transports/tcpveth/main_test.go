package tcpveth_test

import (
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/tcpveth"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// TestMain makes the test binary double as the peer process of the
// cross-process conformance suite (see transporttest.Main), inside a
// private network namespace.
func TestMain(m *testing.M) {
	transporttest.Main(m, transporttest.MainOptions{Transports: []transports.Transport{tcpveth.New()}, NeedNetns: true})
}
