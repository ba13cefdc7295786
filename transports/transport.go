// Package transports defines the one interface every ipcbench IPC mechanism
// implements, after Go's net package and libp2p's transport interface.
//
// A Transport makes a Listener in the measuring (bench) process and dials it
// from the peer process. The Listener reports an Endpoint: a serialisable
// (transport name, address, options) triple plus the files the peer must
// inherit (pipes, a shared-memory descriptor) through exec.Cmd.ExtraFiles.
// Every connection is a net.Conn with working deadlines whose errors are
// *net.OpError values, so that on every transport
//
//	errors.Is(err, os.ErrDeadlineExceeded) // a deadline passed
//	errors.Is(err, net.ErrClosed)          // the local side was closed
//	errors.Is(err, io.EOF)                 // the peer closed after its last byte
//	errors.Is(err, ErrPeerGone)            // the peer is gone (see below)
//
// hold. How much a transport can tell about a peer that is gone differs,
// because the kernel tells sockets and pipes less than shared memory's
// liveness socket tells shm-lock and shm-ring:
//
//   - shm-lock, shm-ring: a peer that died makes Read and Write fail with
//     ErrPeerGone; one that closed makes Read return io.EOF after its last
//     byte and Write fail with syscall.EPIPE (not ErrPeerGone).
//   - unix, tcp-*: Read returns io.EOF when the peer closed and, usually,
//     when it died: the kernel closes a dead process's sockets for it. Only
//     a peer that died (or closed) with bytes it had not read resets the
//     connection, and Read then fails with ErrPeerGone (ECONNRESET). Write
//     to a peer that closed or died fails with ErrPeerGone (EPIPE or
//     ECONNRESET; over TCP possibly one Write later).
//   - pipe: Read returns io.EOF whether the peer closed or died; Write
//     fails with ErrPeerGone (EPIPE) in both cases.
//
// So on every transport, "the peer is gone" is errors.Is(err, io.EOF) ||
// errors.Is(err, ErrPeerGone) on Read, and errors.Is(err, ErrPeerGone) ||
// errors.Is(err, syscall.EPIPE) on Write; only shm-* tell a death from a
// close.
//
// Capabilities that only some transports have (CloseWrite, zero-copy
// buffers, effective options) are small optional interfaces found by type
// assertion; no transport fakes a method it cannot honour.
//
// An Endpoint reaches the peer process with AttachTo in the parent and
// InheritedEndpoint in the child.
//
// Users name a transport and its variant with a spec, "shm-ring[wait=spin]"
// (Spec, ParseSpec, ParseSpecList); every transport checks a variant's
// options without listening (OptionChecker).
//
// The implementations live one per package below this one (tcplocal,
// tcppublic, tcpveth, unix, pipe, shmlock, shmring); package transports/all lists
// them, resolves specs and listens or dials by spec and address. Package
// transports/peer is the peer process of the benchmarks, and
// transports/transporttest the conformance suite every implementation runs.
package transports

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/ipcbench/ipcbench/internal/units"
)

// Transport is one IPC mechanism.
//
// Implementations are safe for concurrent use and hold no state between
// calls: all state lives in Listeners and connections.
type Transport interface {
	// Name is the stable, user-facing name ("tcp-localhost", "unix", ...),
	// used in flags, raw records and benchmark names.
	Name() string

	// Listen prepares to accept connections. It fails with an error wrapping
	// ErrUnavailable when the mechanism cannot run on this machine (no
	// non-loopback interface, no permission), so callers can report the
	// transport as skipped rather than failed, and with one wrapping
	// ErrBadEndpoint when Config.Address is not one it can listen on (a
	// malformed or foreign host:port, a socket path too long or in a
	// directory open to others): a mistake to report, never to skip.
	Listen(ctx context.Context, cfg Config) (Listener, error)

	// Dial connects to the endpoint a Listener reported, normally from the
	// peer process. ep.Files, where the transport uses them, are the files
	// the peer inherited (or, in-process, the Listener's own).
	// For transports that prepare channels in advance (Config.Conns), Dial
	// uses channel ep.Index of ep.Files and takes that channel's files:
	// the connection holds duplicates of the descriptors it needs, and
	// once it is made Dial closes the channel's files in ep.Files (pipe:
	// Files[2i] and Files[2i+1]; shm-*: the same two), so that the
	// connection's Close is the end the other side sees (io.EOF after the
	// last byte) even while the dialing process lives on and never
	// touches ep.Files. The other channels' files, and the channel's own
	// when Dial fails, stay the caller's; a caller that closes ep.Files
	// after Dial as well does no harm (closing an *os.File twice is
	// safe). tcp-veth's one file names a network namespace, not a channel:
	// Dial leaves it open, for any number of dials (RedialableEndpoint).
	//
	// With no Files Dial dials ep.Address (for pipe and shm-*, a
	// rendezvous that hands over a fresh channel), as often as the caller
	// likes. Cancelling ctx aborts a dial still in progress; a dial by
	// address that fails once ctx's deadline has
	// passed wraps context.DeadlineExceeded. A rendezvous dial waits for
	// its channel at most 10 seconds (the time a listener keeps a channel
	// for its dialer), or until ctx's deadline when that is sooner: a
	// listener that accepted the connection but hands over no channel
	// (stopped, hung) fails it with an error wrapping
	// os.ErrDeadlineExceeded that says so, where a socket transport's
	// dial would have connected.
	//
	// A dial by address that nobody answers fails at once, alike on every
	// transport: a socket path that does not exist (no listener yet, or
	// one that closed) with an error wrapping ErrBadEndpoint and
	// fs.ErrNotExist; an address where nobody listens (a TCP port, a
	// socket file a killed listener left) with one wrapping ErrPeerGone
	// and syscall.ECONNREFUSED; a path that is not a socket with one
	// wrapping ErrBadEndpoint alone; a socket of another kind (unix
	// dialing the rendezvous of pipe or shm-*, or the reverse) with one
	// wrapping ErrBadEndpoint (for unix also syscall.EPROTOTYPE). A
	// program waiting for its listener to appear retries while
	// errors.Is(err, fs.ErrNotExist) or errors.Is(err,
	// syscall.ECONNREFUSED) holds, and reports any other error.
	Dial(ctx context.Context, ep Endpoint) (net.Conn, error)
}

// Listener is a net.Listener that also reports the Endpoint a peer needs to
// dial it.
//
// Close stops Accept (which then returns an error wrapping net.ErrClosed)
// and removes everything the listener created on the file system: socket
// files, private directories, shared-memory files. Connections already
// accepted stay open and are closed by their owner.
type Listener interface {
	net.Listener

	// Endpoint returns what a peer needs to dial this listener. The files in
	// it stay owned by the Listener: the caller hands them to the peer (for
	// example through exec.Cmd.ExtraFiles) but does not close them. A Dial
	// with them in this process takes the dialed channel's files as it
	// does in a peer (see Transport.Dial), which the Listener copes with.
	Endpoint() Endpoint
}

// Config tunes a Listener. The zero value is usable: every field has a
// documented default.
type Config struct {
	// Address selects where to listen, with a per-transport meaning:
	// tcp-public takes an interface name ("eth0") or an IP address, and
	// picks the first up, non-loopback interface when empty; tcp-localhost
	// takes a loopback host, a port or both ("127.0.0.1:5000", ":5000",
	// "localhost:5000", "[::1]:5000", "127.0.0.2"; empty: 127.0.0.1 and an
	// ephemeral port) and refuses a wildcard or non-loopback host with
	// ErrBadEndpoint, as it does a port another socket has (also
	// syscall.EADDRINUSE); unix takes the socket path (default: a fresh
	// private directory in os.TempDir()); pipe, shm-lock and shm-ring take
	// the path of a rendezvous socket through which any process of the
	// same user dials by address, each dial getting a fresh channel
	// (empty: no rendezvous, only the Conns channels handed down as
	// inherited files); with one, shm-lock and shm-ring refuse the option
	// mapping=file (ErrBadOption), whose unsealable file a dialer could
	// shrink under the listener, and their Dial by address refuses a
	// channel that is not a memfd sealed against shrinking
	// (ErrBadEndpoint), which a process posing as the listener could
	// shrink under the dialer. A socket path's directory must be the
	// user's own and closed to others (0700); a missing one is made so.
	// See each package.
	Address string

	// Conns is the number of connections a listener must prepare in advance
	// for transports whose channels are created before the peer starts
	// (pipe, shm-lock, shm-ring), handed down as inherited files. Zero
	// means 1, except with an Address, where zero prepares none (dials go
	// through the rendezvous). Socket transports accept any number and
	// ignore it.
	Conns int

	// BufferSize, when positive, asks for kernel or ring buffers of this many
	// bytes per direction: SO_SNDBUF/SO_RCVBUF for sockets, F_SETPIPE_SZ for
	// pipes, the ring capacity for shared memory. The kernel may round it;
	// the effective value is reported through OptionReporter. Zero keeps the
	// system default. A very small value forces partial reads and writes.
	// Over MaxBufferSize, Listen and Dial refuse it (ErrBadOption).
	BufferSize int

	// Options holds transport-specific variant settings as key=value pairs
	// (for example "nodelay": "false"). Unknown keys are an error wrapping
	// ErrBadOption. The options travel in the Endpoint, so both ends apply
	// them.
	Options map[string]string
}

// ConnCount returns c.Conns, or 1 when it is not positive.
func (c Config) ConnCount() int {
	if c.Conns <= 0 {
		return 1
	}
	return c.Conns
}

// Endpoint is what a peer needs to dial a Listener.
//
// Transport, Address, BufferSize and Options serialise to JSON; Files do not
// (they travel as inherited descriptors) and are replaced by their count.
type Endpoint struct {
	// Transport is the Transport's Name.
	Transport string `json:"transport"`
	// Address is the transport-specific address ("127.0.0.1:40000", a socket
	// path; for pipe and shm-* the rendezvous socket's path, or empty when
	// the listener has none and only Files can be dialed). Dial uses Files
	// when there are any, and the address only when there are none.
	Address string `json:"address,omitempty"`
	// BufferSize repeats Config.BufferSize so the dialing side applies it too.
	BufferSize int `json:"buffer_size,omitempty"`
	// Options repeats Config.Options so the dialing side applies them too.
	Options map[string]string `json:"options,omitempty"`
	// Index selects which prepared channel Dial uses, for transports that
	// prepare Config.Conns channels before the peer starts (pipe,
	// shm-lock); 0 <= Index < Conns. Socket transports ignore it.
	Index int `json:"index,omitempty"`
	// NumFiles is len(Files) when serialised; on the receiving side it says
	// how many inherited files belong to this endpoint.
	NumFiles int `json:"files,omitempty"`
	// Files are descriptors the peer inherits, in the transport's own order.
	// Dial closes those of the channel it dialed (see Transport.Dial).
	Files []*os.File `json:"-"`
}

// OptionReporter is implemented by connections (and listeners) that can say
// which settings are actually in effect, read back from the kernel where
// possible: "nodelay=true", "sndbuf=8192", "multipath=false",
// "ring_bytes=65536", ... Benchmarks record these beside every result.
type OptionReporter interface {
	EffectiveOptions() map[string]string
}

// MemoryReporter is implemented by transports that state what one
// connection costs in memory and other resources, for a given Config.
// MemoryPerConn returns upper bounds, per connection, that hold however
// many connections are open and whatever the connection is doing (idle, or
// with every buffer full); resources a process pays once, however many
// connections it has, are not in them. The conformance suite
// (transports/transporttest, case memory) opens 64 connections, fills their
// buffers and checks every field against what it measures. Every transport
// of this module implements it; each package's doc states the same
// figures.
type MemoryReporter interface {
	MemoryPerConn(cfg Config) Memory
}

// Memory is what one connection may hold at most: the kernel bytes of the
// connection as a whole, and the mappings and user-space resources of
// each of its two ends (the accepting and the dialing side, normally in
// two processes). A zero field means none.
type Memory struct {
	// SharedBytes is the size of the shared-memory mappings one end maps
	// for the connection (for shm-*, the rings with their header, and the
	// other process's wake page). Both ends map the rings, whose physical
	// pages are shared and backed only once touched.
	SharedBytes int64
	// KernelBytes is the most memory the kernel lets one direction of the
	// connection queue, in the kernel's own accounting (payload plus
	// per-buffer overhead): for TCP the sender's send buffer plus the
	// receiver's receive buffer, for a Unix stream socket the sender's
	// send buffer (queued data is charged to the sender), each plus the
	// one buffer the kernel admits past the send buffer's limit; for a
	// pipe its capacity. The connection holds at most twice this, one
	// per direction.
	KernelBytes int64
	// HeapBytes is the Go heap and stack memory one end keeps while the
	// connection is open, beyond the caller's own buffers (a measured
	// figure with margin; the suite checks the mean over many ends).
	HeapBytes int64
	// Goroutines is how many goroutines one end runs while the
	// connection is open, beyond the caller's.
	Goroutines int
	// Descriptors is how many file descriptors one end holds open.
	Descriptors int
}

// PeekReader is implemented by connections that can lend the bytes waiting
// to be read instead of copying them into a caller's buffer (shm-ring; see
// shmring.ZeroCopy). Peek returns waiting bytes, at least one, waiting as
// Read does (io.EOF at the end); Release(n) consumes the first n of them;
// the lent bytes stay valid and unchanged until then. A workload that only
// inspects what it reads (the stream workload's sink, which checks every
// byte) reads this way when PeekEnabled reports true; a variant turns it
// off (shm-ring's zerocopy=off) to measure the copy it saves.
type PeekReader interface {
	Peek() ([]byte, error)
	Release(n int) error
	PeekEnabled() bool
}

// OptionChecker is implemented by transports that can check a variant's
// options without listening or dialing: CheckOptions returns nil when
// Listen and Dial would accept opts as Config.Options and
// Endpoint.Options, and otherwise the error they would give (wrapping
// ErrBadOption), for an unknown key or a malformed value alike. It checks
// with the same code Listen uses, so a spec that passes it fails later
// only for reasons of the machine (ErrUnavailable: a pipe size above the
// system's limit, no memfd). Every transport of this module implements it.
type OptionChecker interface {
	CheckOptions(opts map[string]string) error
}

// DescriptorConn is implemented by connections that live on
// operating-system descriptors (stream sockets, pipes), so that a program
// can serve them outside Go's network poller: with blocking system calls
// on a thread of their own, in another process, or in an epoll loop.
// Descriptors returns duplicates, owned by the caller, of the descriptor
// the connection reads from and the one it writes to: one duplicate, given
// twice (rfd == wfd), for a socket; two for a pipe pair. They share their
// open file descriptions, O_NONBLOCK included, with the connection: a
// caller that changes that flag or moves bytes through them must stop
// moving bytes through the connection (Close stays safe). Shared-memory
// connections have no such descriptor and do not implement it.
type DescriptorConn interface {
	Descriptors() (rfd, wfd int, err error)
}

// RedialableEndpoint is implemented by listeners whose Endpoint, files
// included, can be dialed any number of times (tcp-veth: its file names a
// network namespace, not a channel) when RedialableEndpoint reports true.
// A caller that dials once per exchange then reuses the listener instead
// of making a fresh one for each, as it must for pipe and shm-lock, whose
// files are the channels themselves.
type RedialableEndpoint interface {
	RedialableEndpoint() bool
}

// RendezvousDialer is implemented by transports whose Dial by address
// does not connect a kernel socket at Config.Address but fetches the
// connection's channel (its descriptors) over a rendezvous socket there,
// when DialsThroughRendezvous reports true (pipe, shm-lock, shm-ring). Such
// an address is always a path on this host, and every connection through
// it is one more channel that its two processes serve in user space (a
// shared-memory waiter, a pipe pair), unlike a socket's.
type RendezvousDialer interface {
	DialsThroughRendezvous() bool
}

// FileOnlyDialer is implemented by transports whose connections can be
// dialed only with the files of their listener's Endpoint, handed to a
// child process, and never by address from a process of its own, when
// DialsOnlyThroughFiles reports true (tcp-veth: the file names the network
// namespace the listener made). A stand-alone server (ipcbench serve),
// whose clients dial by address, cannot serve them.
type FileOnlyDialer interface {
	DialsOnlyThroughFiles() bool
}

// DialsByAddress reports whether a process of its own can dial t's
// listeners by address: whether t is not a FileOnlyDialer that says it
// dials only through files. A stand-alone server can serve only such a
// transport.
func DialsByAddress(t Transport) bool {
	fd, ok := t.(FileOnlyDialer)
	return !ok || !fd.DialsOnlyThroughFiles()
}

// Describer is implemented by every transport of this module: Description
// is one line saying what the transport is and which options it takes, as
// `ipcbench transports` lists it.
type Describer interface {
	Description() string
}

// Describe returns t's Description, or "" when t is not a Describer.
func Describe(t Transport) string {
	if d, ok := t.(Describer); ok {
		return d.Description()
	}
	return ""
}

// MeasurementOnly is implemented by transports that have option values
// which exist only to measure something (what a default saves, such as
// shm-ring's zerocopy=off) and which a program should never choose.
// MeasurementOnlyOptions lists them as "key=value"; `ipcbench transports`
// prints them and the chooser (bench/choose) never recommends a variant
// that sets one. See MeasurementOnlyOption.
type MeasurementOnly interface {
	MeasurementOnlyOptions() []string
}

// MeasurementOnlyOption returns the first option of opts, as "key=value"
// in sorted key order, that t marks measurement-only (MeasurementOnly), or
// "" when there is none or t marks nothing.
func MeasurementOnlyOption(t Transport, opts map[string]string) string {
	mo, ok := t.(MeasurementOnly)
	if !ok {
		return ""
	}
	marked := mo.MeasurementOnlyOptions()
	return firstOption(opts, func(k, v string) bool { return slices.Contains(marked, k+"="+v) })
}

// ListenerOnly is implemented by transports some of whose options only
// the listener applies: what they set is part of the channel the listener
// makes, and a dialer's value is checked but not used (shm-lock's and
// shm-ring's mapping, pipe's pipe_size). A dial by address to a listener
// that runs on its own (ipcbench serve, measured with ipcbench run
// -connect) therefore cannot choose them: the listener decided when it
// was started. ListenerOnlyOptions lists their keys. See
// ListenerOnlyOption.
type ListenerOnly interface {
	ListenerOnlyOptions() []string
}

// ListenerOnlyOption returns the first option of opts, as "key=value" in
// sorted key order, whose key t marks listener-only (ListenerOnly), or ""
// when there is none or t marks nothing.
func ListenerOnlyOption(t Transport, opts map[string]string) string {
	lo, ok := t.(ListenerOnly)
	if !ok {
		return ""
	}
	marked := lo.ListenerOnlyOptions()
	return firstOption(opts, func(k, _ string) bool { return slices.Contains(marked, k) })
}

// firstOption returns the first option of opts, as "key=value" in sorted
// key order, that marked says yes to, or "" when there is none.
func firstOption(opts map[string]string, marked func(key, value string) bool) string {
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if marked(k, opts[k]) {
			return k + "=" + opts[k]
		}
	}
	return ""
}

// DefaultOptioner is implemented by transports some of whose options have
// a value that means the same as leaving the option out (unix's
// io=netpoll, shm-ring's wait=adaptive). DefaultOptions lists them as
// "key=value"; Canonical drops them, so that "unix[io=netpoll]" and "unix"
// name one variant.
type DefaultOptioner interface {
	DefaultOptions() []string
}

// OptionSpeller is implemented by transports some of whose option values
// can be spelled in more than one way: a size as "256k", "256KiB" or
// "262144", a count of nanoseconds with leading zeros. CanonicalValue
// returns the one spelling of value that Canonical compares (for a size,
// units.FormatSize's: "256KiB"), or value unchanged when it is not a valid
// value of key (CheckOptions says why).
type OptionSpeller interface {
	CanonicalValue(key, value string) string
}

// Canonical returns s as the shortest spelling of its variant, whose
// String is the label to compare: each option value in its one spelling
// (OptionSpeller: "unix[sndbuf=256KiB]" for "unix[sndbuf=262144]"), then
// without the options that t lists as its defaults (DefaultOptioner:
// "unix" for "unix[io=netpoll]"). Options nil when none is left; s is not
// modified.
func Canonical(t Transport, s Spec) Spec {
	if len(s.Options) == 0 {
		return s
	}
	do, hasDefaults := t.(DefaultOptioner)
	sp, spells := t.(OptionSpeller)
	if !hasDefaults && !spells {
		return s
	}
	var defaults []string
	if hasDefaults {
		defaults = do.DefaultOptions()
	}
	var opts map[string]string
	for k, v := range s.Options {
		if spells {
			v = sp.CanonicalValue(k, v)
		}
		if slices.Contains(defaults, k+"="+v) {
			continue
		}
		if opts == nil {
			opts = make(map[string]string, len(s.Options))
		}
		opts[k] = v
	}
	return Spec{Name: s.Name, Options: opts}
}

// CloseWriter is implemented by connections that can shut down their
// sending direction alone; the peer then reads io.EOF after the last byte
// while the reverse direction keeps working.
type CloseWriter interface {
	CloseWrite() error
}

// Sentinel errors. Transports wrap them (inside *net.OpError where the error
// comes from a connection) so callers test them with errors.Is.
var (
	// ErrUnavailable means the transport cannot run on this machine or with
	// this configuration; the message says why. Runners report it as
	// "skipped", not as a failure. A mistake in a listen address is
	// ErrBadEndpoint instead.
	ErrUnavailable = errors.New("transport unavailable")
	// ErrUnknownTransport means no transport has the requested name.
	ErrUnknownTransport = errors.New("unknown transport")
	// ErrBadOption means an option key or value is not understood.
	ErrBadOption = errors.New("bad transport option")
	// ErrBadEndpoint means an Endpoint is malformed or does not belong to
	// the transport it was given to (wrong name, missing files, bad address),
	// or that Listen refuses Config.Address (see Transport.Listen).
	ErrBadEndpoint = errors.New("bad endpoint")
	// ErrPeerGone means the other end is gone: its process died or
	// vanished without closing the connection in an orderly way, or, on
	// sockets and pipes, whose kernel errors cannot tell a death from a
	// close, the connection was reset or a Write found the other end
	// closed (see the package doc). A Dial fails with it (and
	// syscall.ECONNREFUSED) where nobody listens any more (see
	// Transport.Dial).
	ErrPeerGone = errors.New("peer gone")
	// ErrCorrupt means shared state (a shared-memory header or ring index)
	// holds values that break the transport's invariants; nothing was read
	// or written outside the mapping.
	ErrCorrupt = errors.New("corrupt shared state")
)

// CheckOptions returns an error wrapping ErrBadOption when opts has a key not
// in allowed. Transports call it when they parse their options (for
// Listen, Dial and OptionChecker alike).
func CheckOptions(transport string, opts map[string]string, allowed ...string) error {
	var bad []string
	for k := range opts {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	known := "none"
	if len(allowed) > 0 {
		known = strings.Join(allowed, ", ")
	}
	return &OptionError{Transport: transport, Keys: bad, Known: known}
}

// OptionError reports option keys a transport does not understand.
type OptionError struct {
	// Transport is the transport's name ("unix").
	Transport string
	// Keys are the keys it does not take, sorted.
	Keys []string
	// Known lists the keys it takes, comma-separated ("sndbuf, rcvbuf,
	// io"), or is "none".
	Known string
}

// Error implements error.
func (e *OptionError) Error() string {
	return e.Transport + ": unknown option " + strings.Join(e.Keys, ", ") + " (known: " + e.Known + ")"
}

// Unwrap makes errors.Is(err, ErrBadOption) hold.
func (e *OptionError) Unwrap() error { return ErrBadOption }

// MaxBufferSize is the largest Config.BufferSize (and size option) a
// transport takes: the kernel's socket and pipe buffer sizes are C ints.
const MaxBufferSize = math.MaxInt32

// CheckBufferSize returns an error wrapping ErrBadOption, naming the
// transport, when size (Config.BufferSize, Endpoint.BufferSize) is over
// MaxBufferSize: a kernel would see it truncated. Listen and Dial of every
// transport check it first.
func CheckBufferSize(transport string, size int) error {
	if size > MaxBufferSize {
		return fmt.Errorf("%s: buffer size %d: %v (at most %d): %w", transport, size, units.ErrTooLarge, MaxBufferSize, ErrBadOption)
	}
	return nil
}

// SizeOption parses the byte-count option key of opts ("64k", "1MiB", a
// plain number of bytes; binary units). It reports whether the option is
// present; a malformed value gives an error wrapping ErrBadOption that
// names the transport and the key.
func SizeOption(transport string, opts map[string]string, key string) (int, bool, error) {
	v, ok := opts[key]
	if !ok {
		return 0, false, nil
	}
	n, err := units.ParseBytes(v)
	if err == nil && n > MaxBufferSize {
		err = units.ErrTooLarge
	}
	if err != nil {
		return 0, false, fmt.Errorf("%s: option %s=%q: %v: %w", transport, key, v, err, ErrBadOption)
	}
	return int(n), true, nil
}

// CanonicalSize returns a byte-count option value (see SizeOption) in its
// one spelling, units.FormatSize's ("256KiB" for "256k" and "262144"), or
// v unchanged when it is not a valid size. Transports' CanonicalValue
// (OptionSpeller) uses it for their size options.
func CanonicalSize(v string) string {
	n, err := units.ParseBytes(v)
	if err != nil || n > MaxBufferSize {
		return v
	}
	return units.FormatSize(int(n))
}
