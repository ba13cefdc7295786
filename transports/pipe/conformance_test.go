package pipe_test

import (
	"testing"

	"github.com/ipcbench/ipcbench/transports/pipe"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// TestConformance runs the conformance suite, the in-process behaviour
// cases included.
func TestConformance(t *testing.T) {
	transporttest.RunWith(t, pipe.New(), transporttest.RunOptions{Behaviour: true})
}
