package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ipcbench/ipcbench/internal/private"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// The peer sources (Options.PeerSources) other than inherit: a spawned
// peer that dials by address, and a stand-alone server per case.

// reach is how a peer that is not handed a listener's files can reach it.
type reach int

const (
	// reachSocket: the endpoint has no files; the peer of the inherit
	// source already dials its address (tcp-*, unix).
	reachSocket reach = iota
	// reachRendezvous: the files are the channels (pipe, shm-*); a
	// listener made with a rendezvous path is dialed by address instead.
	reachRendezvous
	// reachFilesOnly: the files are not the channel but are needed for
	// any dial (tcp-veth's network namespace), so nothing dials by
	// address alone.
	reachFilesOnly
)

// reachOf says how ln, a listener of tr listening as for the inherit
// source, is reached by address.
func reachOf(tr transports.Transport, ln transports.Listener) reach {
	switch {
	case !transports.DialsByAddress(tr):
		return reachFilesOnly
	case len(ln.Endpoint().Files) == 0:
		return reachSocket
	}
	return reachRendezvous
}

// listenInherit listens as the inherit source does: the case's
// connections prepared in advance where the transport needs that. It
// returns a reason to skip the case when the transport is unavailable
// here.
func (cr *caseRun) listenInherit(ctx context.Context) (transports.Listener, string, error) {
	tr := cr.spec.Transport
	ln, err := tr.Transport.Listen(ctx, transports.Config{Conns: cr.spec.Conns, BufferSize: cr.opts.BufferSize, Options: tr.Options})
	if err != nil {
		if errors.Is(err, transports.ErrUnavailable) {
			return nil, err.Error(), nil
		}
		return nil, "", transportOp(cr.res.Transport, "listen", err)
	}
	return ln, "", nil
}

// transportOp adds op, the step of a case that failed, to err, an error
// of the transport named name. The transports' errors start with the
// transport's name and most say the operation too ("shm-ring: listen:
// channel 4: ..."), and a case's failure reason starts with the name once
// (caseRun.fail): op goes after the name, and not at all when the text
// names it already, so a reason reads "shm-ring: by address: listen: ..."
// and repeats neither. An error that does not start with the name gets op
// in front. errors.Is and errors.As see err either way.
func transportOp(name, op string, err error) error {
	rest, ok := strings.CutPrefix(err.Error(), name+": ")
	switch {
	case !ok:
		return fmt.Errorf("%s: %w", op, err)
	case strings.HasPrefix(rest, op+":"), strings.HasPrefix(rest, op+" "):
		return err
	}
	return &opError{text: name + ": " + op + ": " + rest, err: err}
}

// opError is an error with its text rewritten by transportOp.
type opError struct {
	text string
	err  error
}

func (e *opError) Error() string { return e.text }
func (e *opError) Unwrap() error { return e.err }

// cannotDialByAddress is the reason to skip a case whose transport
// cannot be dialed by address at all.
func (cr *caseRun) cannotDialByAddress() string {
	return fmt.Sprintf("%s: not dialed by address: its endpoint's files are needed for every dial", cr.name)
}

// viaDirPrefix starts the name of a case's private directory; the PID
// that follows lets a later case remove the directory of a run that was
// killed before its close ran (private.TempDir).
const viaDirPrefix = "ipcbench-via-"

// privatePath makes the case's private directory (0700, removed by close;
// a killed run's, by the next case that makes one) and returns the path of
// a socket in it.
func (cr *caseRun) privatePath() (string, error) {
	dir, err := private.TempDir(viaDirPrefix)
	if err != nil {
		return "", fmt.Errorf("making a private directory for the address: %w", err)
	}
	cr.dir = dir
	return filepath.Join(dir, "s"), nil
}

// listenByAddress replaces the inherit source's listener cr.ln with one
// that the peer dials by address, as an unrelated process would: for
// pipe and shm-* a listener with a rendezvous socket in a private
// directory and no channel prepared, so that every dial gets a fresh
// channel through it. A socket's peer already dials by address under the
// inherit source, so such a case is skipped as the same case.
func (cr *caseRun) listenByAddress(ctx context.Context) (skip string, err error) {
	how := reachOf(cr.spec.Transport.Transport, cr.ln)
	cr.ln.Close()
	cr.ln = nil
	switch how {
	case reachSocket:
		return fmt.Sprintf("%s: via=%s is the via=%s case: a socket's peer dials the listener's address under both", cr.name, SourceAddress, SourceInherit), nil
	case reachFilesOnly:
		return cr.cannotDialByAddress(), nil
	}
	path, err := cr.privatePath()
	if err != nil {
		return "", err
	}
	tr := cr.spec.Transport
	if cr.ln, err = tr.Transport.Listen(ctx, transports.Config{Address: path, BufferSize: cr.opts.BufferSize, Options: tr.Options}); err != nil {
		if skip := cr.refusedByAddress(err); skip != "" {
			return skip, nil
		}
		// The transport's error names the path already.
		return "", transportOp(cr.res.Transport, "by address", err)
	}
	return "", nil
}

// refusedByAddress is the reason to skip a case whose transport, with the
// case's options, will not listen where any process of the user may dial
// it: its Listen by address failed with transports.ErrBadOption, options
// that NewRunner found valid (shm-*'s mapping=file, whose file a dialer
// could shrink, crashing the listener). It is "" for any other error.
func (cr *caseRun) refusedByAddress(err error) string {
	if !errors.Is(err, transports.ErrBadOption) {
		return ""
	}
	return fmt.Sprintf("%s: not listening by address with these options (only a peer that inherits its channels can use them: -peer-source %s): %v", cr.name, SourceInherit, err)
}

// serveAddress returns the address the case's stand-alone server is told
// to listen on, found from a listener of the inherit source made and
// closed for it: host:0 for TCP (the host the transport listens on, a
// port of the kernel's choice), else a socket path in a private
// directory.
func (cr *caseRun) serveAddress(ctx context.Context) (addr, skip string, err error) {
	ln, skip, err := cr.listenInherit(ctx)
	if skip != "" || err != nil {
		return "", skip, err
	}
	ep, how := ln.Endpoint(), reachOf(cr.spec.Transport.Transport, ln)
	ln.Close()
	switch {
	case how == reachFilesOnly:
		return "", cr.cannotDialByAddress(), nil
	case how == reachSocket && !filepath.IsAbs(ep.Address):
		host, _, err := net.SplitHostPort(ep.Address)
		if err != nil {
			return "", "", fmt.Errorf("the listener's address %q: %w", ep.Address, err)
		}
		return net.JoinHostPort(host, "0"), "", nil
	}
	if addr, err = cr.privatePath(); err != nil {
		return "", "", err
	}
	if how != reachRendezvous {
		return addr, "", nil
	}
	// A rendezvous listener refuses some options by address alone (see
	// refusedByAddress); found here, by listening there once, so that
	// the case is skipped with the transport's reason rather than failed
	// by a server that exits without listening.
	probe, err := cr.spec.Transport.Transport.Listen(ctx, transports.Config{Address: addr, Options: cr.spec.Transport.Options})
	if err != nil {
		if skip := cr.refusedByAddress(err); skip != "" {
			return "", skip, nil
		}
		return "", "", transportOp(cr.res.Transport, "by address", err)
	}
	if err := probe.Close(); err != nil {
		return "", "", transportOp(cr.res.Transport, "by address", err)
	}
	return addr, "", nil
}

// startServer starts the serve source's stand-alone server: the peer's
// executable with the arguments peer.ServeArg, -t SPEC, -listen ADDRESS,
// on the case's peer CPUs, and waits for the address it listens on. The
// case is then measured as against Options.Remote; close stops the
// server. It returns a reason to skip the case when the server cannot
// measure what the spawned peer would.
func (cr *caseRun) startServer(ctx context.Context) (skip string, err error) {
	if m := cr.spec.Transport.Model(); m != peer.ModelGoroutine {
		return fmt.Sprintf("%s: the %s server model is the spawned peer's; a stand-alone server serves every connection on a goroutine", cr.name, m), nil
	}
	if cr.opts.BufferSize > 0 {
		return cr.name + ": a stand-alone server listens with the transport's default buffers; the buffer size applies to spawned peers only", nil
	}
	addr, skip, err := cr.serveAddress(ctx)
	if skip != "" || err != nil {
		return skip, err
	}
	spec := cr.opts.Peer
	spec.Args = []string{peer.ServeArg, "-t", cr.spec.Transport.transportSpec().String(), "-listen", addr}
	spec.Attach = nil
	spec.CPUs = cr.spec.Placement.Peer
	if cr.server, err = cr.startProc(ctx, spec); err != nil {
		return "", err
	}
	if cr.r.onPeerStart != nil {
		cr.r.onPeerStart(cr.server.PID())
	}
	line, err := cr.server.RecvLine(ctx)
	if err != nil {
		return "", fmt.Errorf("the server did not say where it listens: %w", err)
	}
	got, ok := strings.CutPrefix(line, peer.ListeningPrefix)
	if !ok {
		return "", fmt.Errorf("the server said %q, not %q and its address", line, peer.ListeningPrefix)
	}
	cr.remote = &remoteCase{tr: cr.spec.Transport, addr: got}
	return "", nil
}

// stopServer stops the serve source's server, if the case started one:
// SIGTERM, which it answers by closing everything and exiting, or SIGKILL
// when the case timed out (a stuck server would only add
// proc.CloseGrace); either way it is reaped.
func (cr *caseRun) stopServer(timedOut bool) {
	if cr.server == nil {
		return
	}
	if timedOut {
		_ = cr.server.Kill()
	} else {
		_ = cr.server.Signal(syscall.SIGTERM)
	}
	cr.server.Close()
	cr.server = nil
}
