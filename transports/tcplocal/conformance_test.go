package tcplocal_test

import (
	"testing"

	"github.com/ipcbench/ipcbench/transports/tcplocal"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// TestConformance runs the conformance suite, the in-process behaviour
// cases included.
func TestConformance(t *testing.T) {
	transporttest.RunWith(t, tcplocal.New(), transporttest.RunOptions{Behaviour: true})
}
