// Package tcplocal is the "tcp-localhost" transport: plain TCP (Multipath
// TCP off) between two processes over 127.0.0.1.
//
// The listener binds 127.0.0.1 with an ephemeral port, never a wildcard;
// Config.Address is ignored. Option "nodelay" ("true", the default, or
// "false") sets TCP_NODELAY on both ends; Config.BufferSize sets SO_SNDBUF
// and SO_RCVBUF on both ends. Connections implement transports.CloseWriter
// and transports.OptionReporter (nodelay, sndbuf, rcvbuf, multipath read
// back from the kernel); EPIPE and ECONNRESET wrap transports.ErrPeerGone.
// Dial only connects to loopback addresses; any process dials the
// listener's host:port as often as it likes.
//
// Memory per connection: the kernel's socket buffers per direction
// (autotuned from net.ipv4.tcp_wmem/tcp_rmem, by default 16 KiB growing up
// to 4 MiB and 6 MiB, or fixed by Config.BufferSize); nothing in user
// space beyond the caller's buffers.
package tcplocal

import (
	"fmt"
	"net/netip"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/tcpx"
)

// Name is the transport's stable name.
const Name = "tcp-localhost"

// New returns the tcp-localhost transport.
func New() transports.Transport {
	return tcpx.New(tcpx.Spec{
		Name:    Name,
		Resolve: func(string) (netip.Addr, error) { return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil },
		CheckDial: func(a netip.Addr) error {
			if !a.IsLoopback() {
				return fmt.Errorf("%s: dial: %v is not a loopback address: %w", Name, a, transports.ErrBadEndpoint)
			}
			return nil
		},
	})
}
