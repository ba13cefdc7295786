package shmring

import "github.com/ipcbench/ipcbench/transports/internal/shm"

// Every shm-ring connection offers ZeroCopy.
var _ ZeroCopy = (*shm.Conn)(nil)
