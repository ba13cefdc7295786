package tcppublic_test

import (
	"testing"

	"github.com/ipcbench/ipcbench/transports/tcppublic"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// TestConformance runs the cross-process conformance suite.
func TestConformance(t *testing.T) { transporttest.Run(t, tcppublic.New()) }
