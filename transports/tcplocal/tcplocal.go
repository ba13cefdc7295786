// Package tcplocal is the "tcp-localhost" transport: plain TCP (Multipath
// TCP off) between two processes over 127.0.0.1.
//
// The listener binds 127.0.0.1 with an ephemeral port, never a wildcard.
// Config.Address may name the port (":5000", "127.0.0.1:5000") and another
// loopback address ("127.0.0.2:5000", "[::1]:5000"); a non-loopback or
// wildcard address, or a bad port, is refused (transports.ErrBadEndpoint). Option "nodelay" ("true", the default, or
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
// space beyond the caller's buffers. MemoryPerConn
// (transports.MemoryReporter) states it for a Config: per direction the
// sender's SO_SNDBUF plus 1.5 × the receiver's SO_RCVBUF at their largest
// (the extra half: the one segment the kernel queues past the send
// buffer's limit, at most half the window), 4 MiB + 9 MiB with the
// default sysctls, 5 × Config.BufferSize when it is set (the kernel
// doubles each); per end one socket (two descriptors with io=raw), no
// goroutine, and at most 8 KiB of Go heap (0.3-3.3 KiB measured). The
// conformance suite holds 64 connections with full buffers and checks
// every figure against SO_MEMINFO.
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
		Resolve: resolve,
		CheckDial: func(a netip.Addr) error {
			if !a.IsLoopback() {
				return fmt.Errorf("%s: dial: %v is not a loopback address: %w", Name, a, transports.ErrBadEndpoint)
			}
			return nil
		},
	})
}

// resolve returns the loopback address to listen on: 127.0.0.1 for an
// empty host, else host itself when it is a loopback address.
func resolve(host string) (netip.Addr, error) {
	if host == "" || host == "localhost" {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		return netip.Addr{}, fmt.Errorf("%s: listen: %q is not a loopback address (tcp-localhost listens only on loopback; tcp-public on other addresses): %w",
			Name, host, transports.ErrBadEndpoint)
	}
	return a, nil
}
