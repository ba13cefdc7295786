//go:build !linux

package shmlock

import (
	"context"
	"fmt"
	"net"

	"github.com/ipcbench/ipcbench/transports"
)

// Name is the transport's stable, user-facing name.
const Name = "shm-lock"

type transport struct{}

// New returns the shm-lock transport. It needs Linux (futexes, memfd); on
// other systems Listen and Dial fail with an error wrapping
// transports.ErrUnavailable.
func New() transports.Transport { return transport{} }

// Name returns "shm-lock".
func (transport) Name() string { return Name }

// Listen fails: shm-lock needs Linux.
func (transport) Listen(context.Context, transports.Config) (transports.Listener, error) {
	return nil, fmt.Errorf("shm-lock: needs Linux futexes: %w", transports.ErrUnavailable)
}

// Dial fails: shm-lock needs Linux.
func (transport) Dial(context.Context, transports.Endpoint) (net.Conn, error) {
	return nil, fmt.Errorf("shm-lock: needs Linux futexes: %w", transports.ErrUnavailable)
}
