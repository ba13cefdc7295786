//go:build !linux

package shm

import (
	"context"
	"fmt"
	"net"

	"github.com/ipcbench/ipcbench/transports"
)

type transport struct{ kind Kind }

// New returns the transport of kind k. It needs Linux (futexes, memfd); on
// other systems Listen and Dial fail with an error wrapping
// transports.ErrUnavailable.
func New(k Kind) transports.Transport { return transport{kind: k} }

// Name returns "shm-lock" or "shm-ring".
func (t transport) Name() string { return t.kind.Name() }

// Description says what the transport is (transports.Describer).
func (t transport) Description() string { return t.kind.description() }

// DialsThroughRendezvous reports true, as on Linux
// (transports.RendezvousDialer).
func (t transport) DialsThroughRendezvous() bool { return true }

// Listen fails: the shared-memory transports need Linux.
func (t transport) Listen(context.Context, transports.Config) (transports.Listener, error) {
	return nil, fmt.Errorf("%s: needs Linux futexes: %w", t.kind.Name(), transports.ErrUnavailable)
}

// Dial fails: the shared-memory transports need Linux.
func (t transport) Dial(context.Context, transports.Endpoint) (net.Conn, error) {
	return nil, fmt.Errorf("%s: needs Linux futexes: %w", t.kind.Name(), transports.ErrUnavailable)
}

// MemoryPerConn states nothing: without Linux no connection is made.
func (t transport) MemoryPerConn(transports.Config) transports.Memory { return transports.Memory{} }
