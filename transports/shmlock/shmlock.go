package shmlock

import (
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/shm"
)

// Name is the transport's stable, user-facing name.
const Name = "shm-lock"

// OptionMapping is the one option key shm-lock understands: "memfd" insists
// on a memfd, "file" uses a file in /dev/shm.
// Without it the transport uses a memfd and falls back to a file when
// memfd_create fails. A listener by address (Config.Address) always uses
// a sealed memfd and refuses "file" (see the package documentation).
const OptionMapping = shm.OptionMapping

// New returns the shm-lock transport. See the package documentation for the
// channels, files and layout it uses.
func New() transports.Transport { return shm.New(shm.Lock) }
