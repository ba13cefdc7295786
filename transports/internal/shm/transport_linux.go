package shm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/connerr"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
)

type transport struct{ kind Kind }

// New returns the transport of kind k. See the package documentation for
// the channels, files and layout it uses.
func New(k Kind) transports.Transport { return transport{kind: k} }

var (
	_ transports.Transport        = transport{}
	_ transports.MemoryReporter   = transport{}
	_ transports.RendezvousDialer = transport{}
)

// heapPerEnd bounds the Go heap and stack one end of a connection keeps:
// its Conn with the two waiters, the liveness *os.File and the watch
// goroutine's stack. Measured with 64 connections (transporttest's
// memory case, a mean over 128 ends): 3.5-6 KiB per end, up to 8 KiB
// under the race detector; 32 KiB leaves room for the watch stack to
// double once and for allocation classes that differ between Go releases.
const heapPerEnd = 32 << 10

// MemoryPerConn states what one connection holds
// (transports.MemoryReporter): the mapping of header and two rings of
// ringCapacity(cfg.BufferSize) bytes, which each end maps, plus each
// end's mapping of the other process's wake page; no kernel buffer; per
// end, one goroutine (watch), two descriptors (its end of the liveness
// socket pair and the peer process's doorbell) and heapPerEnd bytes of Go
// heap and stack.
func (t transport) MemoryPerConn(cfg transports.Config) transports.Memory {
	return transports.Memory{
		SharedBytes: int64(mapSizeFor(ringCapacity(cfg.BufferSize)) + wakeSize),
		HeapBytes:   heapPerEnd,
		Goroutines:  1,
		Descriptors: 2,
	}
}

// Name returns "shm-lock" or "shm-ring".
func (t transport) Name() string { return t.kind.Name() }

// Description says what the transport is (transports.Describer).
func (t transport) Description() string { return t.kind.description() }

// DialsThroughRendezvous reports true: a shared-memory channel is dialed
// by address through a rendezvous socket (transports.RendezvousDialer).
func (t transport) DialsThroughRendezvous() bool { return true }

// Listen prepares cfg.ConnCount() channels (with cfg.Address: cfg.Conns,
// and a rendezvous at that path that makes one more per dial), each a
// shared mapping with two rings of ringCapacity(cfg.BufferSize) bytes and
// a liveness socket pair. It fails with an error wrapping
// transports.ErrUnavailable when neither a memfd nor a file can be made,
// with one wrapping transports.ErrBadEndpoint when the rendezvous path is
// refused (see the package doc of shmlock), and with one wrapping
// transports.ErrBadOption for an unknown option, or for mapping=file with
// cfg.Address (checkByAddress): a listener by address makes sealed memfds
// only. A channel fetched from the rendezvous whose dialer does not
// attach within rendezvous.AttachTimeout (10s) is released: its mapping
// and descriptors.
func (t transport) Listen(ctx context.Context, cfg transports.Config) (transports.Listener, error) {
	l, err := listen(ctx, t.kind, cfg)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Dial attaches to channel ep.Index of a Listener's endpoint, or, when ep
// has no Files, to a fresh channel fetched from the rendezvous at
// ep.Address (see package rendezvous for its errors). It maps
// ep.Files[2*ep.Index] (without keeping the descriptor), validates its
// header, claims the channel, duplicates ep.Files[2*ep.Index+1] and sends
// the hello on it; once the listener answered, it closes those two files
// (see transports.Transport.Dial). The other channels' files, and both
// when Dial fails, stay the caller's. A header that breaks the
// layout gives an error wrapping transports.ErrCorrupt; a wrong endpoint
// (other transport, missing files, a channel already dialed, a ring size
// that differs from ep.BufferSize's) one wrapping transports.ErrBadEndpoint.
// A channel fetched from the rendezvous must be a memfd sealed against
// shrinking, as every listener by address makes: anything else (a file,
// which its sender could truncate under this process's mapping and crash
// it with SIGBUS) is refused, before it is mapped, with an error wrapping
// transports.ErrBadEndpoint. An inherited channel may be a file
// (mapping=file).
func (t transport) Dial(ctx context.Context, ep transports.Endpoint) (net.Conn, error) {
	c, err := dial(ctx, t.kind, ep, false)
	if errors.Is(err, transports.ErrBadOption) {
		return nil, err // it names the transport already, as Listen's does
	}
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: t.kind.Name(), Err: err}
	}
	return c, nil
}

// dial attaches to ep's channel; fetched says that ep came from
// rendezvous.Fetch, so that its mapping must be a sealed memfd (see
// attachMapping) and it is not fetched again.
func dial(ctx context.Context, kind Kind, ep transports.Endpoint, fetched bool) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ep.Transport != kind.Name() {
		return nil, fmt.Errorf("endpoint is for transport %q: %w", ep.Transport, transports.ErrBadEndpoint)
	}
	set, err := parseOptions(kind, ep.Options)
	if err != nil {
		return nil, err
	}
	if err := transports.CheckBufferSize(kind.Name(), ep.BufferSize); err != nil {
		return nil, err
	}
	if len(ep.Files) == 0 && ep.Address != "" && !fetched {
		got, err := rendezvous.Fetch(ctx, ep)
		if err != nil {
			return nil, err
		}
		defer rendezvous.CloseFiles(got.Files) // when the dial failed; it closed them otherwise
		return dial(ctx, kind, got, true)
	}
	i := ep.Index
	if i < 0 || 2*i+1 >= len(ep.Files) || ep.Files[2*i] == nil || ep.Files[2*i+1] == nil {
		return nil, fmt.Errorf("endpoint has %d files, channel %d needs files %d and %d: %w",
			len(ep.Files), i, 2*i, 2*i+1, transports.ErrBadEndpoint)
	}

	mem, ringCap, err := attachMapping(ep.Files[2*i], kind, fetched)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Conn, error) {
		unmap(mem)
		return nil, err
	}
	if want := ringCapacity(ep.BufferSize); ringCap != want {
		return fail(fmt.Errorf("mapping has %d-byte rings, endpoint buffer size %d asks for %d: %w",
			ringCap, ep.BufferSize, want, transports.ErrBadEndpoint))
	}
	h := headerOf(mem)
	if !h.state.CompareAndSwap(stateListening, stateAttached) {
		if s := h.state.Load(); s != stateAttached {
			return fail(corruptf("channel state %d", s))
		}
		return fail(fmt.Errorf("channel %d is already dialed: %w", i, transports.ErrBadEndpoint))
	}
	live, err := dupFile(ep.Files[2*i+1], "ipcbench-shm-live")
	if err != nil {
		return fail(fmt.Errorf("duplicating liveness socket: %w: %w", err, transports.ErrBadEndpoint))
	}
	if err := ctx.Err(); err != nil {
		live.Close()
		return fail(err)
	}
	own, ownFiles, err := acquireWake()
	if err != nil {
		live.Close()
		return fail(err)
	}
	if err := sendWake(live, helloByte, ownFiles); err != nil {
		releaseWake()
		live.Close()
		return fail(fmt.Errorf("sending hello: %w: %w", err, transports.ErrPeerGone))
	}
	peer, err := recvWakeCtx(ctx, live, answerByte)
	if err != nil {
		releaseWake()
		live.Close()
		if errors.Is(err, errEOF) {
			err = fmt.Errorf("waiting for the listener's answer: %w: %w", err, transports.ErrPeerGone)
		} else if !errors.Is(err, transports.ErrCorrupt) && !errors.Is(err, transports.ErrBadEndpoint) && ctx.Err() == nil {
			// ECONNRESET: the listener died with the hello unread.
			err = fmt.Errorf("waiting for the listener's answer: %w", connerr.PeerGone(err))
		}
		return fail(err)
	}
	rendezvous.CloseFiles(ep.Files[2*i : 2*i+2]) // the conn holds its own; see transports.Transport.Dial
	return newConn(kind, set, mem, ringCap, sideDial, i, live, own, peer), nil
}

// Listener prepares the channels of one shm-lock or shm-ring listener and hands them out
// through Accept in the order peers attach. See the package documentation
// for the layout of Endpoint().Files.
type Listener struct {
	kind    Kind
	set     settings
	ringCap int
	mapping string
	mode    string // the mapping option channels are made with (see newChannel)
	// bufferSize and options are Config's, for the endpoints of offers.
	bufferSize int
	options    map[string]string
	rv         *rendezvous.Server // nil without Config.Address
	wakeFiles  []*os.File         // this process's wake page and doorbell, for hellos
	ep         transports.Endpoint
	chans      []*channel
	attach     chan attachEvent // one event per channel at most, buffered
	done       chan struct{}    // closed by Close
	wg         sync.WaitGroup   // the hello goroutines

	mu     sync.Mutex // guards closed and channel.taken
	closed bool
}

var (
	_ transports.Listener       = (*Listener)(nil)
	_ transports.OptionReporter = (*Listener)(nil)
)

// channel is one prepared channel as the listener holds it.
type channel struct {
	index    int
	mem      []byte
	ringCap  int
	mapFile  *os.File  // the mapping, Endpoint file 2*index
	peerLive *os.File  // the peer's liveness end, Endpoint file 2*index+1
	live     *os.File  // the listener's liveness end (non-blocking)
	peerWake *wakePage // the dialer's wake page, from its hello
	taken    bool      // handed out by Accept (the conn owns mem, live and peerWake)
}

type attachEvent struct {
	index int
	err   error
}

func listen(ctx context.Context, kind Kind, cfg transports.Config) (*Listener, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	set, err := parseOptions(kind, cfg.Options)
	if err != nil {
		return nil, err
	}
	if err := transports.CheckBufferSize(kind.Name(), cfg.BufferSize); err != nil {
		return nil, err
	}
	mode := set.mapping
	if cfg.Address != "" {
		if err := checkByAddress(kind, cfg.Address, set); err != nil {
			return nil, err
		}
		mode = mappingMemfd // sealed, and no fallback to a file
	}
	return listenMode(ctx, kind, cfg, set, mode)
}

// listenMode is listen once cfg's options are checked (set): its
// channels' mappings are made with mode (see createMapping), whether or
// not cfg has an Address. Only tests call it with mappingFile and an
// Address, as a listener that breaks the rule would.
func listenMode(ctx context.Context, kind Kind, cfg transports.Config, set settings, mode string) (*Listener, error) {
	n := cfg.ConnCount()
	if cfg.Address != "" {
		n = max(cfg.Conns, 0) // by address, only the channels asked for
	}
	l := &Listener{
		kind:       kind,
		set:        set,
		mode:       mode,
		ringCap:    ringCapacity(cfg.BufferSize),
		bufferSize: cfg.BufferSize,
		options:    maps.Clone(cfg.Options),
		attach:     make(chan attachEvent, n),
		done:       make(chan struct{}),
	}
	var err error
	if _, l.wakeFiles, err = acquireWake(); err != nil {
		return nil, fmt.Errorf("%s: listen: %w", kind.Name(), err)
	}
	l.ep = transports.Endpoint{
		Transport:  kind.Name(),
		BufferSize: cfg.BufferSize,
		Options:    maps.Clone(cfg.Options),
		NumFiles:   2 * n,
		Files:      make([]*os.File, 0, 2*n),
	}
	if cfg.Address != "" {
		rv, err := rendezvous.Listen(cfg.Address, n, l.offer)
		if err != nil {
			l.Close() // releases the wake page acquired above
			return nil, fmt.Errorf("%s: listen: %w", kind.Name(), err)
		}
		l.rv = rv
		l.ep.Address = rv.Path()
		l.mapping = mode // mappingMemfd, but for tests (see listenMode)
	}
	for i := range n {
		if err := ctx.Err(); err != nil {
			l.Close()
			return nil, err
		}
		ch, err := newChannel(kind, i, l.ringCap, mode)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("%s: listen: channel %d: %w", kind.Name(), i, err)
		}
		l.chans = append(l.chans, ch)
		l.ep.Files = append(l.ep.Files, ch.mapFile, ch.peerLive)
		l.mapping = mappingName(headerOf(ch.mem).flags.Load())
		l.wg.Add(1)
		go l.awaitHello(ch)
	}
	return l, nil
}

// checkByAddress refuses, before anything is made, the settings a
// listener reachable at address (a rendezvous that any process of this
// user can dial) must not use: mapping=file. A dialer receives the
// mapping's descriptor; a memfd is sealed against shrinking, but a file
// cannot be sealed, so a dialer could truncate it and this process would
// die of SIGBUS at its next access to the mapping.
func checkByAddress(kind Kind, address string, set settings) error {
	if set.mapping != mappingFile {
		return nil
	}
	return fmt.Errorf("%s: listen: option %s=%s with an address (%s): any process of this user may dial it and receives the mapping's file, which cannot be sealed: a dialer that shrank it would crash this process (SIGBUS); use the default mapping, a memfd sealed against that, or %s=%s only for a peer that inherits its channels: %w",
		kind.Name(), OptionMapping, mappingFile, address, OptionMapping, mappingFile, transports.ErrBadOption)
}

// offer makes channel i for one dial through the rendezvous.
func (l *Listener) offer(i int) (*rendezvous.Offer, error) {
	ch, err := newChannel(l.kind, i, l.ringCap, l.mode)
	if err != nil {
		return nil, err
	}
	ep := transports.Endpoint{
		Transport:  l.kind.Name(),
		BufferSize: l.bufferSize,
		Options:    maps.Clone(l.options),
		Files:      []*os.File{ch.mapFile, ch.peerLive}, // the rendezvous sends and closes them
	}
	return &rendezvous.Offer{
		Endpoint: ep,
		Await: func() (net.Conn, error) {
			err := l.readHello(ch)
			if err == nil {
				if s := headerOf(ch.mem).state.Load(); s != stateAttached {
					err = corruptf("channel %d: hello received in state %d", ch.index, s)
				}
			}
			if err != nil {
				ch.release()
				return nil, err
			}
			return l.conn(ch), nil
		},
		Abort: func() { ch.live.SetReadDeadline(time.Unix(1, 0)) },
	}, nil
}

// newChannel makes channel i: the mapping (see createMapping for mode) with
// its header, and the liveness socket pair.
func newChannel(kind Kind, i, ringCap int, mode string) (*channel, error) {
	size := mapSizeFor(ringCap)
	fd, flags, err := createMapping(mode, size)
	if err != nil {
		return nil, err
	}
	suffix := "#" + strconv.Itoa(i)
	mapFile := os.NewFile(uintptr(fd), memfdName+suffix)
	mem, err := mapShared(mapFile, size)
	if err != nil {
		mapFile.Close()
		return nil, err
	}
	initHeader(mem, ringCap, flags, kind)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		unmap(mem)
		mapFile.Close()
		return nil, fmt.Errorf("liveness socket pair: %w", err)
	}
	if err := unix.SetNonblock(pair[0], true); err != nil {
		unmap(mem)
		mapFile.Close()
		unix.Close(pair[0])
		unix.Close(pair[1])
		return nil, fmt.Errorf("liveness socket: %w", err)
	}
	return &channel{
		index:    i,
		mem:      mem,
		ringCap:  ringCap,
		mapFile:  mapFile,
		peerLive: os.NewFile(uintptr(pair[1]), "ipcbench-shm-live"+suffix),
		live:     os.NewFile(uintptr(pair[0]), "ipcbench-shm-live"+suffix),
	}, nil
}

// awaitHello waits for the peer's hello on channel ch and reports it to
// Accept. It returns without a report once Close was called.
func (l *Listener) awaitHello(ch *channel) {
	defer l.wg.Done()
	err := l.readHello(ch)
	select {
	case <-l.done:
		return // Close releases the channel
	default:
	}
	l.attach <- attachEvent{index: ch.index, err: err}
}

// readHello reads the dialer's hello from channel ch's liveness socket,
// maps the dialer's wake page into ch.peerWake, and answers with this
// process's wake page.
func (l *Listener) readHello(ch *channel) error {
	peer, err := recvWake(ch.live, helloByte)
	if err != nil {
		return fmt.Errorf("channel %d: waiting for the peer's hello: %w", ch.index, err)
	}
	ch.peerWake = peer
	if err := sendWake(ch.live, answerByte, l.wakeFiles); err != nil {
		return fmt.Errorf("channel %d: answering the peer's hello: %w: %w", ch.index, err, transports.ErrPeerGone)
	}
	return nil
}

// Accept waits for a peer to attach to one of the prepared channels and
// returns its connection, in attach order. It then closes the listener's
// copies of that channel's Endpoint files. Once every channel is taken,
// Accept blocks until Close, after which it returns an error wrapping
// net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	var ev attachEvent
	var rvConns <-chan net.Conn
	if l.rv != nil {
		rvConns = l.rv.Conns()
	}
	select {
	case <-l.done:
		return nil, l.opError("accept", net.ErrClosed)
	case c := <-rvConns:
		return c, nil
	case ev = <-l.attach:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, l.opError("accept", net.ErrClosed)
	}
	ch := l.chans[ev.index]
	if ev.err == nil {
		if s := headerOf(ch.mem).state.Load(); s != stateAttached {
			ev.err = corruptf("channel %d: hello received in state %d", ch.index, s)
		}
	}
	if ev.err != nil {
		ch.release()
		ch.taken = true // nothing left for Close to release
		return nil, l.opError("accept", ev.err)
	}
	ch.taken = true
	ch.mapFile.Close()
	ch.peerLive.Close()
	return l.conn(ch), nil
}

// conn makes the listening side's connection over channel ch, whose hello
// arrived; it takes over the channel.
func (l *Listener) conn(ch *channel) *Conn {
	own, _, _ := acquireWake() // the listener holds a reference: cannot fail
	return newConn(l.kind, l.set, ch.mem, ch.ringCap, sideListen, ch.index, ch.live, own, ch.peerWake)
}

// release closes everything the listener holds for an unused channel.
func (ch *channel) release() {
	ch.live.Close()
	ch.peerLive.Close()
	ch.mapFile.Close()
	unmap(ch.mem)
	if ch.peerWake != nil {
		ch.peerWake.close()
		ch.peerWake = nil
	}
}

// Close stops Accept, which then returns an error wrapping net.ErrClosed,
// and releases every channel not yet accepted: its mapping and all its
// descriptors, including the Endpoint files. Accepted connections stay open.
// Nothing remains on the file system (the fallback file was unlinked when
// it was made). A second Close returns an error wrapping net.ErrClosed.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.opError("close", net.ErrClosed)
	}
	l.closed = true
	close(l.done)
	var pending []*channel
	for _, ch := range l.chans {
		if !ch.taken {
			pending = append(pending, ch)
			ch.live.SetReadDeadline(time.Unix(1, 0)) // ends awaitHello
		}
	}
	l.mu.Unlock()
	var err error
	if l.rv != nil {
		err = l.rv.Close()
	}
	l.wg.Wait()
	for _, ch := range pending {
		ch.release()
	}
	if l.wakeFiles != nil {
		releaseWake()
	}
	if err != nil {
		return l.opError("close", err)
	}
	return nil
}

// Addr returns the listener's address: the rendezvous socket's path when
// it listens at Config.Address, else its transport and mapping
// ("shm-lock:memfd").
func (l *Listener) Addr() net.Addr {
	if l.rv != nil {
		return addr{l.kind.Name(), l.rv.Path()}
	}
	return addr{l.kind.Name(), l.kind.Name() + ":" + l.mapping}
}

// Endpoint returns what a peer needs to dial: Files[2*i] is channel i's
// mapping and Files[2*i+1] the peer's end of its liveness socket. The files
// stay the Listener's; Accept closes a channel's two files once a peer has
// attached to it, and Close the rest; a Dial in this process closes those
// of the channel it dialed, as it does in a peer.
func (l *Listener) Endpoint() transports.Endpoint {
	ep := l.ep
	ep.Options = maps.Clone(l.ep.Options)
	ep.Files = append([]*os.File(nil), l.ep.Files...)
	return ep
}

// EffectiveOptions reports the settings every channel of the listener
// uses, as Conn.EffectiveOptions does.
func (l *Listener) EffectiveOptions() map[string]string {
	return effectiveOptions(l.kind, l.ringCap, l.mapping, l.set)
}

func (l *Listener) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: l.kind.Name(), Addr: l.Addr(), Err: err}
}
