// Package tcppublic is the "tcp-public" transport: plain TCP (Multipath TCP
// off) between two processes over an address of one of this host's
// non-loopback interfaces.
//
// Config.Address selects the address: empty means the first interface (in
// index order) that is up, not loopback, and has an IPv4 address or,
// failing that, a global IPv6 address (link-local addresses are skipped);
// an interface name ("eth0") picks that interface's address the same way;
// an IP address is used as it is if some interface of this host holds it.
// It never listens on a wildcard or loopback address: when nothing fits,
// Listen fails with an error that says why. The error wraps
// transports.ErrUnavailable when this host cannot give what was asked
// ("no non-loopback interface: ...", the named interface is down or has
// no usable address) and transports.ErrBadEndpoint when the address
// itself is wrong (a wildcard, loopback or link-local address, an address
// or interface name this host does not have, a bad port).
//
// Everything else is as in tcp-localhost (package tcplocal), through the
// same code: option "nodelay" (default "true"), Config.BufferSize for
// SO_SNDBUF/SO_RCVBUF, transports.CloseWriter and OptionReporter on
// connections, ErrPeerGone on EPIPE/ECONNRESET, and the memory per
// connection (the kernel's socket buffers, as MemoryPerConn states).
//
// On Linux, traffic to an address the host itself owns goes through the
// loopback device like 127.0.0.1 does; measure it inside a private network
// namespace (`ipcbench run` makes one, and runs tcp-public there, unless
// given -network host) rather than on real interfaces.
package tcppublic

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/tcpx"
)

// Name is the transport's stable name.
const Name = "tcp-public"

// New returns the tcp-public transport.
func New() transports.Transport {
	return tcpx.New(tcpx.Spec{
		Name:        Name,
		Description: "TCP to an address of the first up, non-loopback interface; options as tcp-localhost",
		Resolve:     resolve,
		CheckDial:   checkDial,
	})
}

func checkDial(a netip.Addr) error {
	if a.IsLoopback() {
		return fmt.Errorf("%s: dial: %v is a loopback address: %w", Name, a, transports.ErrBadEndpoint)
	}
	return nil
}

// iface is what address selection needs to know about an interface.
type iface struct {
	name  string
	flags net.Flags
	addrs []netip.Addr
}

func (i iface) up() bool       { return i.flags&net.FlagUp != 0 }
func (i iface) loopback() bool { return i.flags&net.FlagLoopback != 0 }

// resolve picks the address to listen on for address, from this host's
// interfaces.
func resolve(address string) (netip.Addr, error) {
	ifaces, err := hostInterfaces()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w: %w", Name, transports.ErrUnavailable, err)
	}
	return pick(ifaces, address)
}

// hostInterfaces lists this host's interfaces in index order.
func hostInterfaces() ([]iface, error) {
	list, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]iface, 0, len(list))
	for _, ni := range list {
		addrs, err := ni.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ni.Name, err)
		}
		ifc := iface{name: ni.Name, flags: ni.Flags}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				ifc.addrs = append(ifc.addrs, p.Addr())
			}
		}
		out = append(out, ifc)
	}
	return out, nil
}

// usable returns the address of ifc to listen on: its first IPv4 address,
// else its first global IPv6 address, else the zero Addr.
func usable(ifc iface) netip.Addr {
	var v6 netip.Addr
	for _, a := range ifc.addrs {
		switch {
		case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast():
		case a.Is4() || a.Is4In6():
			return a.Unmap()
		case !v6.IsValid():
			v6 = a
		}
	}
	return v6
}

// pick chooses the listening address from ifaces for address (empty, an
// interface name, or an IP); see the package doc. Errors wrap
// transports.ErrUnavailable when ifaces lack what address asks for, and
// transports.ErrBadEndpoint when address is not one to listen on here.
func pick(ifaces []iface, address string) (netip.Addr, error) {
	refuse := func(sentinel error, format string, args ...any) (netip.Addr, error) {
		return netip.Addr{}, fmt.Errorf("%s: %s: %w", Name, fmt.Sprintf(format, args...), sentinel)
	}
	unavailable := func(format string, args ...any) (netip.Addr, error) {
		return refuse(transports.ErrUnavailable, format, args...)
	}
	bad := func(format string, args ...any) (netip.Addr, error) {
		return refuse(transports.ErrBadEndpoint, format, args...)
	}
	if address == "" {
		var why []string
		for _, ifc := range ifaces {
			switch a := usable(ifc); {
			case ifc.loopback():
				why = append(why, ifc.name+" is loopback")
			case !ifc.up():
				why = append(why, ifc.name+" is down")
			case !a.IsValid():
				why = append(why, ifc.name+" has no IPv4 or global IPv6 address")
			default:
				return a, nil
			}
		}
		if len(why) == 0 {
			why = append(why, "no interfaces")
		}
		return unavailable("no non-loopback interface: %s", strings.Join(why, "; "))
	}
	if ip, err := netip.ParseAddr(address); err == nil {
		switch {
		case ip.IsUnspecified():
			return bad("refusing wildcard address %v", ip)
		case ip.IsLoopback():
			return bad("%v is a loopback address (use tcp-localhost)", ip)
		case ip.IsLinkLocalUnicast():
			return bad("link-local address %v is not supported", ip)
		}
		ip = ip.Unmap()
		for _, ifc := range ifaces {
			for _, a := range ifc.addrs {
				if a.Unmap() == ip {
					if !ifc.up() {
						return unavailable("interface %s holding %v is down", ifc.name, ip)
					}
					return ip, nil
				}
			}
		}
		return bad("address %v is not on any interface of this host", ip)
	}
	var names []string
	for _, ifc := range ifaces {
		names = append(names, ifc.name)
		if ifc.name != address {
			continue
		}
		a := usable(ifc)
		switch {
		case ifc.loopback():
			return bad("interface %s is loopback (use tcp-localhost)", ifc.name)
		case !ifc.up():
			return unavailable("interface %s is down", ifc.name)
		case !a.IsValid():
			return unavailable("interface %s has no IPv4 or global IPv6 address", ifc.name)
		}
		return a, nil
	}
	return bad("no interface or address %q (interfaces: %s)", address, strings.Join(names, ", "))
}
