package tcppublic

import (
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// TestConformance runs the conformance suite, the in-process behaviour
// cases included; each of those first checks that it listens inside the
// private network namespace (hermetic).
func TestConformance(t *testing.T) {
	transporttest.RunWith(t, New(), transporttest.RunOptions{
		Behaviour: true,
		Setup: func(t *testing.T) transports.Config {
			hermetic(t)
			return transports.Config{}
		},
	})
}
