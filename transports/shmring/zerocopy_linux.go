package shmring

import (
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/shm"
)

// Every shm-ring connection offers ZeroCopy.
var _ ZeroCopy = (*shm.Conn)(nil)

// And transports.PeekReader, unless the variant says zerocopy=off.
var _ transports.PeekReader = (*shm.Conn)(nil)
