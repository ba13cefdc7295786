// Package tcpveth is the "tcp-veth" transport: plain TCP (Multipath TCP
// off) between two processes over a real veth link, each end in a network
// namespace of its own. It answers what leaving the loopback device costs,
// which tcp-localhost and tcp-public cannot: both run over lo.
//
// Listen makes two fresh network namespaces joined by a veth pair
// (veth-a 10.78.0.1/30 in A <-> veth-b 10.78.0.2/30 in B) and listens on 10.78.0.1 with an ephemeral port inside A, never on a
// wildcard. The Endpoint carries B's namespace as its one file; Dial makes
// its socket inside B, so every byte crosses the veth pair. The namespaces
// have no name anywhere: they live as long as the listener or a
// connection made in them, and vanish with their veth pair afterwards, a
// crash included.
//
// It runs only inside the private network namespace ipcbench run makes
// (with -network netns, the default); elsewhere, -network host included, Listen
// fails with an error wrapping transports.ErrUnavailable that says so, and
// nothing is changed. Config.Address must be empty or 10.78.0.1 (another
// is refused with an error wrapping transports.ErrBadEndpoint). One
// endpoint serves any number of dials.
//
// Everything else is as in tcp-localhost (package tcplocal), through the
// same code: option "nodelay" (default "true"), sndbuf, rcvbuf, io=raw,
// Config.BufferSize, transports.CloseWriter and OptionReporter on
// connections, ErrPeerGone on EPIPE/ECONNRESET.
//
// Memory per connection: as tcp-localhost, the kernel's socket buffers per
// direction (autotuned from net.ipv4.tcp_wmem/tcp_rmem of the fresh
// namespaces, which start from the kernel's defaults, or fixed by
// Config.BufferSize); nothing in user space beyond the caller's buffers.
// MemoryPerConn states the same figures as tcp-localhost's, from the
// calling process's sysctls.
// Per listener, once: two network namespaces and one veth pair.
package tcpveth

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/tcpx"
)

// Name is the transport's stable name.
const Name = "tcp-veth"

// listenAddr is the address of the listening end, in namespace A.
var listenAddr = netip.MustParseAddr(netns.LinkAddrA)

// New returns the tcp-veth transport.
func New() transports.Transport {
	return tcpx.New(tcpx.Spec{
		Name:        Name,
		Description: "TCP over a veth pair between two network namespaces of its own (10.78.0.1 <-> 10.78.0.2); options as tcp-localhost",
		Resolve:     resolve,
		CheckDial:   checkDial,
		Link:        link,
	})
}

func resolve(address string) (netip.Addr, error) {
	if address != "" && address != listenAddr.String() {
		return netip.Addr{}, fmt.Errorf("%s: listens on %v only, not %q: %w", Name, listenAddr, address, transports.ErrBadEndpoint)
	}
	return listenAddr, nil
}

func checkDial(a netip.Addr) error {
	if a != listenAddr {
		return fmt.Errorf("%s: dial: %v is not the veth link's listening address %v: %w", Name, a, listenAddr, transports.ErrBadEndpoint)
	}
	return nil
}

// link makes the two namespaces; outside ipcbench's private namespace, or
// where namespaces cannot be made, the transport is unavailable.
func link() (*netns.Link, error) {
	l, err := netns.NewLink()
	switch {
	case errors.Is(err, netns.ErrOutside):
		return nil, fmt.Errorf("%s: %w: it runs only inside the private network namespace of 'ipcbench run -network netns' (the default) and never touches the host's interfaces", Name, transports.ErrUnavailable)
	case errors.Is(err, netns.ErrUnsupported):
		return nil, fmt.Errorf("%s: %w: %w", Name, transports.ErrUnavailable, err)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return l, nil
}
