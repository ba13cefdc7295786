package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	vns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The two-host network NewLink creates: two fresh network namespaces, each
// holding one end of a veth pair.
const (
	LinkA     = "veth-a"       // the veth end in namespace A
	LinkB     = "veth-b"       // the veth end in namespace B
	LinkAddrA = "10.78.0.1"    // address of LinkA
	LinkAddrB = "10.78.0.2"    // address of LinkB
	linkCidrA = "10.78.0.1/30" // LinkAddrA with its prefix
	linkCidrB = "10.78.0.2/30" // LinkAddrB with its prefix
	threadNet = "/proc/thread-self/ns/net"
)

// Side names one of a Link's two namespaces.
type Side int

// The sides of a Link.
const (
	SideA Side = iota // the namespace holding LinkA (LinkAddrA)
	SideB             // the namespace holding LinkB (LinkAddrB)
)

// String returns "A" or "B".
func (s Side) String() string {
	if s == SideA {
		return "A"
	}
	return "B"
}

// Link is two fresh network namespaces, A and B, joined by a veth pair:
// LinkA LinkAddrA/30 in A <-> LinkB LinkAddrB/30 in B, both up, with lo up
// in each. It simulates two hosts on one wire: traffic from a socket in A
// to LinkAddrB crosses the veth pair instead of the loopback device.
//
// The namespaces have no name in the file system: they are held by the
// Link's descriptors, and by sockets made in them (Do), and vanish with
// their veth pair when the last of those is closed, the process's crash
// included. Nothing outside the two namespaces is touched.
type Link struct {
	a, b *os.File
}

// NewLink creates a Link. It refuses with an error wrapping ErrOutside
// unless Inside() holds, so that it only ever runs inside the private
// namespace Reexec made; the kernel's refusal wraps ErrUnsupported.
func NewLink() (*Link, error) {
	if !Inside() {
		return nil, fmt.Errorf("netns: link: %w (start the program through Reexec)", ErrOutside)
	}
	l := &Link{}
	var err error
	if l.a, err = newNamespace(); err != nil {
		return nil, err
	}
	if l.b, err = newNamespace(); err != nil {
		l.Close()
		return nil, err
	}
	if err := l.wire(); err != nil {
		l.Close()
		if unsupported(err) {
			return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		return nil, err
	}
	return l, nil
}

// wire creates the veth pair across the namespaces and configures it.
func (l *Link) wire() error {
	ha, err := netlink.NewHandleAt(vns.NsHandle(l.a.Fd()))
	if err != nil {
		return fmt.Errorf("netns: netlink in namespace A: %w", err)
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(vns.NsHandle(l.b.Fd()))
	if err != nil {
		return fmt.Errorf("netns: netlink in namespace B: %w", err)
	}
	defer hb.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: LinkA},
		PeerName:      LinkB,
		PeerNamespace: netlink.NsFd(int(l.b.Fd())),
	}
	if err := ha.LinkAdd(veth); err != nil {
		return fmt.Errorf("netns: create veth %s <-> %s: %w", LinkA, LinkB, err)
	}
	for _, s := range []struct {
		h          *netlink.Handle
		name, cidr string
	}{{ha, LinkA, linkCidrA}, {hb, LinkB, linkCidrB}} {
		lo, err := s.h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("netns: find lo beside %s: %w", s.name, err)
		}
		if err := s.h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("netns: set lo up beside %s: %w", s.name, err)
		}
		link, err := s.h.LinkByName(s.name)
		if err != nil {
			return fmt.Errorf("netns: look up %s: %w", s.name, err)
		}
		addr, err := netlink.ParseAddr(s.cidr)
		if err != nil {
			return fmt.Errorf("netns: parse %s: %w", s.cidr, err)
		}
		if err := s.h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("netns: add %s to %s: %w", s.cidr, s.name, err)
		}
		if err := s.h.LinkSetUp(link); err != nil {
			return fmt.Errorf("netns: set %s up: %w", s.name, err)
		}
	}
	return nil
}

// File returns the descriptor of side's namespace, for a process that
// inherits it (exec.Cmd.ExtraFiles) and enters it with Do. It stays owned
// by the Link.
func (l *Link) File(side Side) *os.File {
	if side == SideA {
		return l.a
	}
	return l.b
}

// Do runs fn with the calling goroutine inside side's namespace; see Do.
func (l *Link) Do(side Side, fn func() error) error { return Do(l.File(side), fn) }

// Close releases the Link's namespaces. Sockets made in them keep them
// alive until they are closed too; then the namespaces and the veth pair
// are gone.
func (l *Link) Close() error {
	var errs []error
	for _, f := range []*os.File{l.a, l.b} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// Do runs fn on the calling goroutine, locked to its OS thread, with that
// thread inside the network namespace ns (a descriptor of
// /proc/PID/ns/net, or Link.File), and returns fn's error. Sockets fn
// creates belong to ns for their whole life, whichever thread uses them
// later. fn must not start goroutines that create sockets: they would not
// run in ns. The thread returns to its own namespace afterwards; if it
// cannot, it is left locked and ends with the goroutine, so no other code
// ever runs in ns by accident.
func Do(ns *os.File, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open(threadNet)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: open own network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		if unsupported(err) {
			return fmt.Errorf("%w: enter network namespace: %w", ErrUnsupported, err)
		}
		return fmt.Errorf("netns: enter network namespace: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Stay locked: the thread exits with this goroutine.
		return errors.Join(ferr, fmt.Errorf("netns: return to own network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// newNamespace creates a fresh network namespace and returns a descriptor
// that holds it; the calling thread stays in its own namespace.
func newNamespace() (*os.File, error) {
	runtime.LockOSThread()
	orig, err := os.Open(threadNet)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("netns: open own network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		if unsupported(err) {
			return nil, fmt.Errorf("%w: new network namespace: %w", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("netns: new network namespace: %w", err)
	}
	f, ferr := os.Open(threadNet)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		if f != nil {
			f.Close()
		}
		return nil, fmt.Errorf("netns: return to own network namespace: %w", err) // thread stays locked and dies
	}
	runtime.UnlockOSThread()
	if ferr != nil {
		return nil, fmt.Errorf("netns: open new network namespace: %w", ferr)
	}
	return f, nil
}
