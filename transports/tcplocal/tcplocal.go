// Package tcplocal is the "tcp-localhost" transport: plain TCP (Multipath
// TCP off) between two processes over 127.0.0.1.
//
// The listener binds 127.0.0.1 with an ephemeral port, never a wildcard.
// Config.Address may name the port (":5000", "127.0.0.1:5000",
// "localhost:5000") and another loopback address ("127.0.0.2:5000",
// "[::1]:5000"); a non-loopback or
// wildcard address, or a bad port, is refused (transports.ErrBadEndpoint). Option "nodelay" ("true", the default, or
// "false") sets TCP_NODELAY on both ends; Config.BufferSize sets SO_SNDBUF
// and SO_RCVBUF on both ends. Connections implement transports.CloseWriter
// and transports.OptionReporter (nodelay, sndbuf, rcvbuf, multipath read
// back from the kernel); EPIPE and ECONNRESET wrap transports.ErrPeerGone.
// Dial only connects to loopback addresses, and takes the host forms
// Listen takes ("localhost" is 127.0.0.1; no name is looked up); any
// process dials the listener's host:port as often as it likes. A port
// nobody listens on fails the dial with an error wrapping
// transports.ErrPeerGone and syscall.ECONNREFUSED (see
// transports.Transport.Dial).
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
		Name:        Name,
		Description: "TCP to 127.0.0.1 (TCP_NODELAY on, Multipath TCP off); options nodelay, sndbuf, rcvbuf, io=raw",
		Resolve:     func(host string) (netip.Addr, error) { return loopback("listen", host) },
		DialHost:    func(host string) (netip.Addr, error) { return loopback("dial", host) },
	})
}

// loopback returns the loopback address host names, for op ("listen" or
// "dial"): 127.0.0.1 for an empty host and for "localhost" (no name is
// looked up), else host itself when it is a loopback IP address. Listen
// and Dial take the same host forms.
func loopback(op, host string) (netip.Addr, error) {
	if host == "" || host == "localhost" {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		return netip.Addr{}, fmt.Errorf("%s: %s: %q is not a loopback address (tcp-localhost is for loopback only; tcp-public for other addresses): %w",
			Name, op, host, transports.ErrBadEndpoint)
	}
	return a, nil
}
