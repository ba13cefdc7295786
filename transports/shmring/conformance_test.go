package shmring

import (
	"testing"

	"github.com/ipcbench/ipcbench/transports/transporttest"
)

func TestConformance(t *testing.T) { transporttest.Run(t, New()) }
