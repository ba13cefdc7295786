package unix_test

import (
	"testing"

	"github.com/ipcbench/ipcbench/transports/transporttest"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// TestConformance runs the cross-process conformance suite.
func TestConformance(t *testing.T) { transporttest.Run(t, unix.New()) }
