// Package tcpx is the one TCP transport implementation behind the
// tcp-localhost, tcp-public and tcp-veth packages, which differ only in the
// address they listen on, the addresses they agree to dial, and (tcp-veth)
// the network namespaces the two ends live in (Spec.Link).
//
// Both ends use plain TCP: Multipath TCP, which Go enables by default on
// some paths, is switched off explicitly on the listener and the dialer.
// TCP_NODELAY is set explicitly on both ends from the "nodelay" option
// (default true). Config.BufferSize sets SO_SNDBUF and SO_RCVBUF on the
// listening socket before listen (accepted sockets inherit them) and on the
// dialing socket before connect; io=raw makes connections bypass Go's
// network poller (see sockconn.RawConn); the options sndbuf and rcvbuf (binary
// units: "256k") set each on its own and override it. It never listens on
// a wildcard address.
package tcpx

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/connerr"
	"github.com/ipcbench/ipcbench/transports/internal/sockconn"
)

// Spec says how one TCP transport differs from another.
type Spec struct {
	// Name is the transport's Name.
	Name string
	// Description is its transports.Describer line.
	Description string
	// Resolve returns the address to listen on for Config.Address. Errors
	// should wrap transports.ErrBadEndpoint when the address is not one
	// the transport listens on (a mistake in it), and
	// transports.ErrUnavailable when the transport cannot run here. An
	// unspecified (wildcard) result is refused with ErrBadEndpoint.
	Resolve func(address string) (netip.Addr, error)
	// DialHost, when non-nil, returns the address Dial connects to for
	// the host part of an Endpoint's address (tcp-localhost: the host
	// forms Resolve takes, "localhost" among them); nil takes an IP
	// address alone. Errors should wrap transports.ErrBadEndpoint.
	DialHost func(host string) (netip.Addr, error)
	// CheckDial vets the address of an Endpoint before Dial connects; nil
	// accepts every specified address. Errors should wrap
	// transports.ErrBadEndpoint.
	CheckDial func(netip.Addr) error
	// Link, when non-nil, makes the transport run between two network
	// namespaces of its own (tcp-veth): Listen calls it, listens on the
	// Resolve address inside side A, hands side B's descriptor to the
	// dialer as Endpoint.Files[0] and releases the link when the listener
	// closes; Dial makes its socket inside the namespace of
	// Endpoint.Files[0]. Errors should wrap transports.ErrUnavailable when
	// the namespaces cannot be made here.
	Link func() (*netns.Link, error)
}

// New returns the TCP transport described by s.
func New(s Spec) transports.Transport { return &transport{spec: s} }

type transport struct{ spec Spec }

var (
	_ transports.Transport       = (*transport)(nil)
	_ transports.OptionChecker   = (*transport)(nil)
	_ transports.MemoryReporter  = (*transport)(nil)
	_ transports.DefaultOptioner = (*transport)(nil)
	_ transports.OptionSpeller   = (*transport)(nil)
	_ transports.FileOnlyDialer  = (*transport)(nil)
	_ transports.Describer       = (*transport)(nil)
)

// DialsOnlyThroughFiles reports whether the transport runs between
// network namespaces of its own (Spec.Link: tcp-veth), which a dial
// enters through the Endpoint's file; see transports.FileOnlyDialer.
func (t *transport) DialsOnlyThroughFiles() bool { return t.spec.Link != nil }

// Name returns the transport's stable name.
func (t *transport) Name() string { return t.spec.Name }

// Description returns Spec.Description (transports.Describer).
func (t *transport) Description() string { return t.spec.Description }

// CheckOptions reports whether Listen and Dial accept opts (nodelay,
// sndbuf, rcvbuf, io); see transports.OptionChecker.
func (t *transport) CheckOptions(opts map[string]string) error {
	_, err := sockconn.ParseOptions(t.spec.Name, true, 0, opts)
	return err
}

// DefaultOptions returns nodelay=true and io=netpoll, the defaults spelled
// out (transports.DefaultOptioner).
func (t *transport) DefaultOptions() []string { return sockconn.DefaultOptions(true) }

// CanonicalValue returns sndbuf and rcvbuf in one spelling ("256KiB" for
// "262144"), other values as they are (transports.OptionSpeller).
func (t *transport) CanonicalValue(key, value string) string {
	return sockconn.CanonicalValue(key, value)
}

// Listen listens on Resolve(host) at port, where cfg.Address is "host",
// "host:port" or ":port" (see SplitPort); port 0 (none given) is an
// ephemeral one. A bad port, a wildcard address or an address another
// socket has (an error that is also syscall.EADDRINUSE) is an error
// wrapping transports.ErrBadEndpoint.
func (t *transport) Listen(ctx context.Context, cfg transports.Config) (transports.Listener, error) {
	name := t.spec.Name
	set, err := sockconn.ParseOptions(name, true, cfg.BufferSize, cfg.Options)
	if err != nil {
		return nil, err
	}
	nodelay, snd, rcv, raw := set.NoDelay, set.SndBuf, set.RcvBuf, set.Raw
	host, port, err := SplitPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w: %w", name, err, transports.ErrBadEndpoint)
	}
	ip, err := t.spec.Resolve(host)
	if err != nil {
		return nil, err
	}
	if !ip.IsValid() || ip.IsUnspecified() {
		return nil, fmt.Errorf("%s: refusing to listen on wildcard address %v: %w", name, ip, transports.ErrBadEndpoint)
	}
	lc := net.ListenConfig{Control: sockconn.Control(snd, rcv)}
	lc.SetMultipathTCP(false)
	addr := netip.AddrPortFrom(ip, port).String()
	var link *netns.Link
	var ln net.Listener
	listen := func() (err error) {
		ln, err = lc.Listen(ctx, network(ip), addr)
		return err
	}
	if t.spec.Link != nil {
		if link, err = t.spec.Link(); err != nil {
			return nil, err
		}
		err = link.Do(netns.SideA, listen)
	} else {
		err = listen()
	}
	if err != nil {
		closeLink(link)
		if errors.Is(err, syscall.EADDRINUSE) && port != 0 {
			// A mistake in the address, as a live listener's socket path
			// is for the unix and rendezvous transports: another port
			// works, so it is not that the transport cannot run here.
			// (With port 0 it means no port was free: not the address.)
			return nil, fmt.Errorf("%s: %s is taken by another socket: %w: %w", name, addr, syscall.EADDRINUSE, transports.ErrBadEndpoint)
		}
		return nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	tl, ok := ln.(*net.TCPListener)
	if !ok { // cannot happen with MPTCP off; be safe rather than panic
		ln.Close()
		closeLink(link)
		return nil, fmt.Errorf("%s: listen on %s: got %T, not a TCP listener", name, addr, ln)
	}
	bufsize := max(cfg.BufferSize, 0)
	l := &listener{
		ln:      tl,
		nodelay: nodelay,
		raw:     raw,
		network: network(ip),
		link:    link,
		ep: transports.Endpoint{
			Transport:  name,
			Address:    tl.Addr().String(),
			BufferSize: bufsize,
			Options:    maps.Clone(cfg.Options),
		},
	}
	if link != nil {
		l.ep.Files = []*os.File{link.File(netns.SideB)}
		l.ep.NumFiles = 1
	}
	return l, nil
}

func closeLink(l *netns.Link) {
	if l != nil {
		l.Close()
	}
}

// SplitPort splits a listen address into the host part that Spec.Resolve
// takes and a port: "127.0.0.1:5000", "[::1]:5000" and ":5000" carry one;
// "127.0.0.1", "::1", "eth0" and "" do not (port 0). A port that is not a
// number from 0 to 65535 is an error.
func SplitPort(address string) (host string, port uint16, err error) {
	h, p, serr := net.SplitHostPort(address)
	if serr != nil {
		return address, 0, nil // no port: a bare host, IPv6 address or interface
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q in address %q", p, address)
	}
	return h, uint16(n), nil
}

func network(ip netip.Addr) string {
	if ip.Is4() || ip.Is4In6() {
		return "tcp4"
	}
	return "tcp6"
}

// Dial connects to ep.Address with the buffer size and options in ep. A
// port nobody listens on fails with an error wrapping
// transports.ErrPeerGone and syscall.ECONNREFUSED, as
// transports.Transport.Dial says.
func (t *transport) Dial(ctx context.Context, ep transports.Endpoint) (net.Conn, error) {
	name := t.spec.Name
	if ep.Transport != name {
		return nil, fmt.Errorf("%s: dial: endpoint is for transport %q: %w", name, ep.Transport, transports.ErrBadEndpoint)
	}
	set, err := sockconn.ParseOptions(name, true, ep.BufferSize, ep.Options)
	if err != nil {
		return nil, err
	}
	nodelay, snd, rcv, raw := set.NoDelay, set.SndBuf, set.RcvBuf, set.Raw
	ap, err := t.dialAddr(ep.Address)
	if err != nil {
		return nil, err
	}
	if t.spec.CheckDial != nil {
		if err := t.spec.CheckDial(ap.Addr()); err != nil {
			return nil, err
		}
	}
	d := net.Dialer{Control: sockconn.Control(snd, rcv)}
	d.SetMultipathTCP(false)
	var c net.Conn
	dial := func() (err error) {
		c, err = d.DialContext(ctx, network(ap.Addr()), ap.String())
		return err
	}
	if t.spec.Link != nil {
		if len(ep.Files) < 1 || ep.Files[0] == nil {
			return nil, fmt.Errorf("%s: dial: endpoint carries no network namespace (want 1 file, got %d): %w", name, len(ep.Files), transports.ErrBadEndpoint)
		}
		err = netns.Do(ep.Files[0], dial)
	} else {
		err = dial()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, connerr.Dial(err))
	}
	return setup(name, network(ap.Addr()), c, nodelay, raw)
}

// dialAddr parses address, a host:port, into the address Dial connects
// to, the host resolved by Spec.DialHost. Errors wrap
// transports.ErrBadEndpoint and name the transport.
func (t *transport) dialAddr(address string) (netip.AddrPort, error) {
	bad := func(format string, args ...any) (netip.AddrPort, error) {
		return netip.AddrPort{}, fmt.Errorf("%s: dial: address %q "+format+": %w", append(append([]any{t.spec.Name, address}, args...), transports.ErrBadEndpoint)...)
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return bad("is not a host:port (%s)", ae.Err) // ae's own text repeats the address
		}
		return bad("is not a host:port (%v)", err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	switch {
	case portText == "":
		return bad("has no port")
	case err != nil:
		return bad("has a bad port %q", portText)
	case port == 0:
		return bad("has port 0, which no listener has")
	}
	var ip netip.Addr
	if t.spec.DialHost != nil {
		if ip, err = t.spec.DialHost(host); err != nil {
			return netip.AddrPort{}, err
		}
	} else if ip, err = netip.ParseAddr(host); err != nil {
		return bad("has host %q, not an IP address", host)
	}
	if !ip.IsValid() || ip.IsUnspecified() {
		return bad("has the wildcard host %v, not one to dial", ip)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// setup sets TCP_NODELAY on a fresh connection, made on network ("tcp4" or
// "tcp6"), and wraps it; on failure it closes c.
func setup(name, network string, c net.Conn, nodelay, raw bool) (net.Conn, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("%s: got %T, not a TCP connection", name, c)
	}
	if err := tc.SetNoDelay(nodelay); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: set TCP_NODELAY=%v: %w", name, nodelay, err)
	}
	w, err := sockconn.WrapAs(tc, network, raw)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return w, nil
}

// listener is a TCP transports.Listener.
type listener struct {
	ln      *net.TCPListener
	nodelay bool
	raw     bool        // io=raw: connections bypass the network poller
	network string      // "tcp4" or "tcp6", as listened on
	link    *netns.Link // the namespaces of Spec.Link, or nil
	ep      transports.Endpoint
}

var (
	_ transports.Listener           = (*listener)(nil)
	_ transports.OptionReporter     = (*listener)(nil)
	_ transports.RedialableEndpoint = (*listener)(nil)
)

// Accept waits for the next connection; after Close it returns an error
// wrapping net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.ln.AcceptTCP()
	if err != nil {
		return nil, err // a *net.OpError naming the address, as net.Listener users expect
	}
	return setup(l.ep.Transport, l.network, c, l.nodelay, l.raw)
}

// RedialableEndpoint reports true: a TCP endpoint, its namespace file
// included, serves any number of dials.
func (l *listener) RedialableEndpoint() bool { return true }

// Close stops listening and releases the listener's namespaces, if any;
// accepted connections stay open (and keep their namespace alive).
func (l *listener) Close() error {
	err := l.ln.Close()
	if l.link != nil {
		l.link.Close()
	}
	return err
}

// Addr returns the listening address.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// Endpoint returns the address and settings a peer dials with. The Options
// map is a copy.
func (l *listener) Endpoint() transports.Endpoint {
	ep := l.ep
	ep.Options = maps.Clone(l.ep.Options)
	return ep
}

// EffectiveOptions reports the listening socket's buffers (inherited by
// accepted connections), multipath=false, and the nodelay setting applied
// to accepted connections.
func (l *listener) EffectiveOptions() map[string]string {
	m := sockconn.ListenerOptions(l.ln)
	m["nodelay"] = fmt.Sprint(l.nodelay)
	return m
}

// MemoryPerConn states what one connection holds
// (transports.MemoryReporter): per direction, the sender's send buffer and
// the receiver's receive buffer at their largest and the one segment the
// kernel queues past the send buffer's limit; per end, one socket and a
// few KiB of Go heap (see sockconn.Memory).
func (t *transport) MemoryPerConn(cfg transports.Config) transports.Memory {
	return sockconn.Memory(t.spec.Name, true, cfg)
}
