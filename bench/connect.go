package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/hist"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// connectWorkload: a new connection per exchange, the HTTP/1.0 pattern.
// One exchange, timed in the bench process, is: hand the endpoint to the
// peer (one message on a handoff socket), accept the peer's connection
// and read the secret that proves it is the peer's (peer.AcceptProven),
// read its request, write the reply, and read EOF once the peer has closed.
// Socket transports listen once and the peer connects anew each time (the
// cost of connect/accept/close); for pipe and shm-* every exchange creates
// a fresh channel (pipes, or a memfd mapping) and hands its descriptors
// over with SCM_RIGHTS in the handoff message, which is what a dial through
// their rendezvous socket costs too (one SCM_RIGHTS message per dial). The
// handoff message is the same for every transport, so it is a constant
// part of every exchange.
var connectWorkload = &workload{
	name:      "connect",
	doc:       "a new connection per exchange (connect, one request, one reply, close): setup cost per transport",
	role:      peer.RoleConnect,
	connect:   true,
	smallOnly: true,
	run:       runConnect,
}

// handoff is the socket pair over which the connect workload hands
// endpoints to the peer.
type handoff struct {
	fd   int      // the bench's end
	peer *os.File // the peer's end, until the peer has inherited it
	once sync.Once
}

func newHandoff() (*handoff, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("handoff socket pair: %w", err)
	}
	return &handoff{fd: fds[0], peer: os.NewFile(uintptr(fds[1]), "ipcbench-handoff")}, nil
}

// shutdown fails a send blocked on the bench's end and makes the peer see
// EOF, without closing the descriptor a concurrent SendHandoff may be
// using; close releases it. Safe from any goroutine.
func (h *handoff) shutdown() {
	unix.Shutdown(h.fd, unix.SHUT_RDWR)
}

// close closes the bench's end (and the peer's, if still held); the peer
// then sees EOF. Safe to call more than once, but only once nothing sends
// on the handoff any more.
func (h *handoff) close() {
	h.once.Do(func() {
		unix.Shutdown(h.fd, unix.SHUT_RDWR)
		unix.Close(h.fd)
		if h.peer != nil {
			h.peer.Close()
		}
	})
}

// connectState is the connect workload's part of a caseRun: the handoff
// socket, and the exchange in progress, which the watchdog interrupts.
type connectState struct {
	handoff *handoff
	curMu   sync.Mutex
	// curLn is the listener the exchange in progress accepts on: the
	// case's listener for socket transports (reused for every exchange),
	// or the exchange's own for transports whose endpoints carry files.
	curLn   transports.Listener
	cur     net.Conn          // the connection in progress, or nil
	options map[string]string // effective options of the first measured exchange
}

// setCurrent records the connection (and, unless nil, the listener) of the
// exchange in progress, so the watchdog can interrupt it.
func (cs *connectState) setCurrent(c net.Conn, ln transports.Listener) {
	cs.curMu.Lock()
	cs.cur = c
	if ln != nil {
		cs.curLn = ln
	}
	cs.curMu.Unlock()
}

// interrupt fails whatever a connect exchange is blocked in: a read or
// write on its connection, an accept, or a send on the handoff socket.
// It does nothing for the other workloads.
func (cs *connectState) interrupt() {
	cs.curMu.Lock()
	defer cs.curMu.Unlock()
	if cs.cur != nil {
		cs.cur.SetDeadline(time.Unix(1, 0))
	}
	if cs.handoff == nil {
		return
	}
	if cs.curLn != nil {
		cs.curLn.Close()
	}
	cs.handoff.shutdown()
}

func runConnect(ctx context.Context, cr *caseRun) (measurement, error) {
	if cr.remote != nil {
		return runConnectRemote(ctx, cr)
	}
	size := cr.spec.Size
	tr := cr.spec.Transport
	// Endpoints whose files are the channel itself (pipe, shm-*) need a
	// fresh listener per exchange; tcp-veth's file names its namespace.
	fresh := reachOf(cr.spec.Transport.Transport, cr.ln) == reachRendezvous
	if fresh {
		cr.ln.Close() // the probe listener; every exchange makes its own
	}
	cfg := transports.Config{Conns: 1, BufferSize: cr.opts.BufferSize, Options: tr.Options}
	w, r := frame.NewWriter(nil, cr.frame), frame.NewReader(nil, cr.frame)
	in := make([]byte, size)
	out := make([]byte, size)
	frame.Fill(out, 0, 0)
	return exchanges(ctx, cr, func(seq uint64, measuring bool) (bool, error) {
		bad := false
		ln := cr.ln
		if fresh {
			var err error
			if ln, err = tr.Transport.Listen(ctx, cfg); err != nil {
				return bad, transportOp(cr.res.Transport, "listen", err)
			}
			defer ln.Close()
			cr.setCurrent(nil, ln)
		}
		if err := peer.SendHandoff(cr.handoff.fd, ln.Endpoint(), size, fresh); err != nil {
			return bad, err
		}
		var c net.Conn
		var err error
		if fresh {
			c, err = ln.Accept() // a channel only the handoff carried: nobody else can be on it
		} else {
			c, err = peer.AcceptProven(ln, cr.secret, cr.admit, nil)
		}
		if err != nil {
			return bad, fmt.Errorf("accept: %w", err)
		}
		defer c.Close()
		cr.setCurrent(c, nil)
		r.Reset(c)
		w.Reset(c)
		req, err := r.ReadMsg(in)
		if err != nil {
			return bad, fmt.Errorf("reading request: %w", err)
		}
		bad = len(req) != size || frame.Check(req, 0, seq) != nil
		frame.Stamp(out, 0, seq)
		if err := w.WriteMsg(out); err != nil {
			return bad, fmt.Errorf("writing reply: %w", err)
		}
		if _, err := r.ReadMsg(in); !errors.Is(err, io.EOF) {
			return bad, fmt.Errorf("waiting for the peer to close: %v", err)
		}
		if measuring && cr.options == nil {
			if or, ok := c.(transports.OptionReporter); ok {
				cr.options = or.EffectiveOptions()
			}
		}
		cr.setCurrent(nil, nil)
		return bad, nil
	})
}

// exchanges runs and times one exchange after another, beside the case's
// clock, until the case stops (or, in count mode, cr.limit exchanges were
// measured). exchange does one, seq numbering them from 0; it reports
// whether a payload failed its check (counted as an error of the case) or
// an error that ends the case. Exchanges that start while cr.measure is
// set are measured.
func exchanges(ctx context.Context, cr *caseRun, exchange func(seq uint64, measuring bool) (bad bool, err error)) (measurement, error) {
	h := hist.New()
	clockErr := make(chan error, 1)
	go func() { clockErr <- cr.clock(ctx) }()

	var msgs, errs int64
	var loopErr error
	for seq := uint64(0); !cr.stop.Load(); seq++ {
		measuring := cr.measure.Load()
		t0 := time.Now()
		bad, err := exchange(seq, measuring)
		d := time.Since(t0)
		if bad {
			errs++
		}
		if err != nil {
			loopErr = stopErr(cr, "exchange", err)
			cr.stop.Store(true)
			break
		}
		if measuring {
			h.Record(d.Nanoseconds())
			msgs++
			cr.progressed()
			if msgs == cr.limit {
				break
			}
		}
	}
	cErr := <-clockErr
	cr.measured()
	if loopErr != nil {
		return measurement{}, loopErr
	}
	if cErr != nil {
		return measurement{}, cErr
	}
	if err := cr.endMeasure(ctx); err != nil {
		return measurement{}, err
	}
	size := int64(cr.spec.Size)
	return measurement{hist: h, messages: msgs, bytes: msgs * size, errors: errs}, nil
}
