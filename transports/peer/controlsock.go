package peer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"syscall"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// ControlSuffix ends the path of a stand-alone server's control socket
// (ControlAddress): the rendezvous path with this suffix, in the same
// directory.
const ControlSuffix = ".control"

// ErrNoControlSocket is wrapped by DialControl's error when nothing
// listens at the control socket: no server there, or an ipcbench serve
// older than the client, which took control connections over the
// transport itself.
var ErrNoControlSocket = errors.New("no control socket")

// ControlAddress returns where a stand-alone server over tr, listening at
// addr, takes its control connections: for a transport dialed through a
// rendezvous (transports.RendezvousDialer: pipe, shm-lock, shm-ring), the
// path of a unix socket next to the rendezvous, addr + ControlSuffix; for
// any other transport "", as control connections go over the transport
// itself.
//
// A control connection stays open, idle, for the whole session. Over a
// rendezvous transport it would be one more user-space channel in both
// processes (a shared-memory connection only spins on its ring while it
// is its process's only waiting one), which changes what the data
// connections measure; the spawned peer's control channel, its stdin and
// stdout, costs nothing of the kind, and neither does the unix socket. An
// idle kernel socket costs its process nothing (both ends mark a control
// connection as a background one, so its idle reads do not stop the data
// connections' reads from yielding the CPU before they park), and TCP may
// cross hosts, so socket transports keep control on themselves.
func ControlAddress(tr transports.Transport, addr string) string {
	if rd, ok := tr.(transports.RendezvousDialer); ok && rd.DialsThroughRendezvous() && addr != "" {
		return addr + ControlSuffix
	}
	return ""
}

// ListenControl listens for a stand-alone server's control connections
// at ControlAddress(tr, addr) with the unix transport, whose rules hold
// (the directory private and this user's, the socket 0600, no symbolic
// links, peers of other users refused, a stale socket replaced and the
// socket removed by Close). It returns nil and no error when tr takes
// control connections itself. Give the listener to Serve as
// ServeOptions.Control.
func ListenControl(ctx context.Context, tr transports.Transport, addr string) (transports.Listener, error) {
	path := ControlAddress(tr, addr)
	if path == "" {
		return nil, nil
	}
	ln, err := unix.New().Listen(ctx, transports.Config{Address: path})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// DialControl dials a fresh control connection to a stand-alone server
// over tr whose listener's endpoint is ep: the unix socket at
// ControlAddress(tr, ep.Address) for a rendezvous transport (an error
// wrapping ErrNoControlSocket when there is none, and syscall.ECONNREFUSED
// too when the one there is stale: its server died), else the
// transport at ep. Make it a control connection with OpenControl.
func DialControl(ctx context.Context, tr transports.Transport, ep transports.Endpoint) (net.Conn, error) {
	path := ControlAddress(tr, ep.Address)
	if path == "" {
		return tr.Dial(ctx, ep)
	}
	c, err := unix.New().Dial(ctx, transports.Endpoint{Transport: unix.Name, Address: path})
	if err != nil {
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("%w at %s: a stale one, nobody listens there (the server that made it is gone without its cleanup: killed?): %w", ErrNoControlSocket, path, syscall.ECONNREFUSED)
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%w at %s (a server of an older ipcbench takes control over %s itself; run the same version on both sides): %w", ErrNoControlSocket, path, tr.Name(), err)
		}
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return c, nil
}
