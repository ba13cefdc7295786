package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"strings"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
	"github.com/ipcbench/ipcbench/transports/tcplocal"
	"github.com/ipcbench/ipcbench/transports/tcppublic"
)

const serveSynopsis = `-t SPEC -listen ADDRESS [flags]

Runs the peer as a stand-alone server, like netserver or iperf3 -s: it
listens on ADDRESS over one transport and serves every workload to any
number of 'ipcbench run -connect ADDRESS' clients, one after another or at
once, until SIGINT or SIGTERM; then it closes every connection, removes its
socket files and exits 0. Each run gets this server's CPU time and
environment header, so its records carry both ends.

A stdout or stderr that goes away (a pipe or unix socket whose reader
closed it: 'ipcbench serve ... | head -1' once head has its line; a TCP
socket only when a write fails) stops it the same way, at once, but it
exits 141 (128+SIGPIPE, what a shell reports for a process that SIGPIPE
killed), since what it writes there is lost; "stopped: its stdout was
closed" on stderr, if that is still there, says which. The -summary file
is written as on any stop once serve listens; an output gone before that
leaves nothing, the file included.

A connection whose first bytes are not ipcbench's hello is served as a plain
echo server (-framing), so someone else's client can be the load; the
summary printed when it stops counts sessions (one per case a run
measured), probes (a run's check of the server before its first case,
which measures nothing), echo clients, messages, bytes and errors. A
connection that sends nothing is kept open, since it may be such a client
waiting before its first message, until it sends, closes or serve stops;
a hello, once begun, must be complete within %[2]v. On the control socket
(below), which no echo client dials, a connection that sends no hello
within %[2]v of connecting is refused and closed.

Who may connect: over tcp-localhost any user of this host, over tcp-public
anyone who reaches the address; serve asks nobody who they are. It bounds
what one client can make it hold (a message at most %[3]s, a control line
%[4]s, a hello %[5]d bytes within %[2]v), and how many connections all
clients together hold open (-max-conns, control socket included: one more
is answered with the reason and closed at once, counted as an error, and
logged, a flood of them in a line every few seconds), but not who holds
them: one client can take them all, keeping the others out until it
closes some. Serve over TCP on networks and hosts you trust, while you
measure. Socket paths (unix, and the rendezvous of pipe, shm-lock,
shm-ring) admit this user's processes only. Each of them receives the
descriptor of its connection's shared mapping from shm-lock and shm-ring,
which serve therefore makes a memfd sealed against shrinking: -t with
mapping=file, whose file cannot be sealed, is refused (exit 2) before
serve listens, since a client that shrank the file would crash serve with
SIGBUS.

-max-conns 0, the default, derives the cap from the descriptor limit
(ulimit -n, which serve raises to the hard limit as it starts): that less
%[6]d for serve itself, divided by the descriptors one connection of the
transport holds (tcp-* and unix 1, with io=raw 2; pipe 2, with io=raw 4;
shm-lock and shm-ring 2). Connections being refused, and pipe and shm
channels fetched from the rendezvous but not yet attached, draw on the
%[6]d. A cap above what the limit allows leaves new connections waiting
once descriptors run out, as without one.

ADDRESS is the transport's: host:port for tcp-localhost (loopback only) and
tcp-public (an address of this host), port 0 for a free one, which the
"listening on" line below names (a host without a port is refused); a
socket path for unix; the path of a rendezvous socket for pipe, shm-lock
and shm-ring. A socket path's directory must be this user's and closed to
others (0700; made when missing, one level), and at the path there must be
nothing or a stale socket nobody listens on, which is replaced: a file that
is not a socket is refused, as is a live listener's socket. A wildcard
address is never listened on. Once listening, it prints "listening on
ADDRESS" (the address to give run -connect) on stdout.

For pipe, shm-lock and shm-ring it also listens on a unix socket next to
the rendezvous, ADDRESS.control (same private directory, mode 0600, other
users' peers refused), and takes run's control connections there only:
each run keeps one open, idle, for its whole session, and over the
measured transport it would be one more channel that both processes
serve in user space (a shared-memory connection only spins on its ring
while it is its process's only waiting one), which a spawned peer, whose
control channel is its stdin and stdout, does not have. Data connections
and echo clients still come through ADDRESS; a control hello there is
refused with the reason. The socket transports (unix, tcp-*) take control
connections over the transport, as an idle socket costs nothing. Both
socket files are removed when it stops; a stale one left by a killed serve
is replaced by the next. A socket file removed or replaced while serve runs
(by hand, or by a cleaner of old files in /tmp) leaves it unreachable there:
it says so once on stderr and goes on with the sessions already open; stop
it and start it again.

Transports: %[1]s`

const serveExamples = `  ipcbench serve -t tcp-localhost -listen 127.0.0.1:5000     # then: ipcbench run -t tcp-localhost -connect 127.0.0.1:5000
  ipcbench serve -t unix -listen "${XDG_RUNTIME_DIR:-/tmp}/ipcb/s"   # then: ipcbench run -t unix -connect "${XDG_RUNTIME_DIR:-/tmp}/ipcb/s"
  ipcbench serve -t unix -listen /tmp/ipcb/s -summary -        # a summary on stdout when stopped
  ipcbench serve -t shm-ring -listen /tmp/ipcb/r               # control connections on /tmp/ipcb/r.control
  ipcbench serve -t tcp-localhost -listen 127.0.0.1:5000 -framing delimited   # echo clients send lines
  ipcbench serve -t tcp-localhost -listen 127.0.0.1:5000 -framing fixed -size 64   # echo clients send 64-byte messages
  ipcbench serve -t tcp-public -listen 10.0.0.2:5000           # for 'run -t tcp-public -connect 10.0.0.2:5000' on another host
`

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "serve", fmt.Sprintf(serveSynopsis, strings.Join(servableNames(), ", "), peer.HelloTimeout,
		bench.FormatSize(bench.MaxMessageSize), bench.FormatSize(proc.MaxLineSize), peer.MaxHelloLen, peer.ReservedDescriptors), serveExamples)
	spec := fs.String("t", "", "the transport, with a variant's options in brackets: tcp-localhost[nodelay=false] (required)")
	listen := fs.String("listen", "", "the address to listen on (required; see above)")
	framing := fs.String("framing", "length", "framing of plain echo clients: length (4-byte big-endian prefix), delimited (newline), fixed (-size bytes)")
	size := fs.String("size", "", "message size of -framing fixed (binary units: 64, 4k)")
	summary := fs.String("summary", "", "where to write the summary when stopped: a new file (missing directories are created), or - for stdout (default: stderr)")
	force := fs.Bool("force", false, "replace an existing -summary file (a regular file only) when serve stops")
	quiet := fs.Bool("q", false, "no log of refused connections on stderr")
	maxConns := fs.Int("max-conns", 0, "the most connections served at once, control socket included; one more is refused with the reason (0: derived from the descriptor limit, see above)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *spec == "" || *listen == "" {
		return usagef("-t and -listen are both required (see 'ipcbench serve -help')")
	}
	r, err := all.Resolve(*spec)
	if err != nil {
		return usagef("-t: %v", err)
	}
	if !transports.DialsByAddress(r.Transport) {
		return notServable(*spec)
	}
	if err := checkListenPort(r.Transport.Name(), *listen); err != nil {
		return err
	}
	mode, err := frame.ParseMode(*framing)
	if err != nil {
		return usagef("-framing: %s", withoutSentinels(err, frame.ErrBadConfig))
	}
	echo := frame.Config{Mode: mode, MaxSize: bench.MaxMessageSize}
	if mode == frame.Fixed {
		if *size == "" {
			return usagef("-framing fixed needs -size, the size of every message")
		}
		if echo.Size, err = bench.ParseSize(*size, bench.MaxMessageSize); err != nil {
			return usagef("-size: %v", err)
		}
	} else if *size != "" {
		return usagef("-size is only for -framing fixed")
	}
	if *maxConns < 0 {
		return usagef("-max-conns %d: want the most connections served at once, 1 or more, or 0 for the default (see 'ipcbench serve -help')", *maxConns)
	}
	if *maxConns == 0 {
		*maxConns = defaultMaxConns(r)
	}
	// From here on serve writes through the guard's outputs: a stdout or
	// stderr that goes away ends serveCtx, which stops it as SIGTERM does.
	// Listening is not cut short: it is quick, and a serve that listens
	// stops the one way, removing what it made.
	serveCtx, e, guard, err := guardOutputs(ctx, e)
	if err != nil {
		return err
	}
	defer guard.Close()
	ln, err := all.Listen(ctx, *spec, *listen)
	if errors.Is(err, transports.ErrBadOption) {
		// An option this transport takes, but not from a listener any
		// process may dial (shm-*'s mapping=file): the spec's fault, not
		// the address's.
		return usagef("-t %s: %v", *spec, err)
	}
	if err != nil {
		return usagef("-listen %s: cannot listen there: %v", *listen, err)
	}
	ep := ln.Endpoint()
	if len(ep.Files) > 0 || ep.Address == "" {
		// A channel handed down as files cannot be dialed by address:
		// what transports.DialsByAddress says of a transport, seen on its
		// listener.
		ln.Close()
		return notServable(*spec)
	}
	addr := ep.Address
	ctl, err := peer.ListenControl(ctx, r.Transport, addr)
	if err != nil {
		ln.Close()
		return usagef("-listen %s: cannot listen there: %v", *listen, err)
	}
	closeBoth := func() {
		if ctl != nil {
			ctl.Close() // first: its socket is in the rendezvous's directory
		}
		ln.Close()
	}
	// The summary's file is started only once serve listens, so that a
	// serve that cannot start leaves no file (nor a directory for one)
	// behind; it takes its name when serve stops.
	var sumOut io.Writer = e.stderr
	var sumFile *bench.Output
	switch *summary {
	case "":
	case "-":
		sumOut = e.stdout
	default:
		if sumFile, err = createOutput("-summary", *summary, *force); err != nil {
			closeBoth()
			return err
		}
		defer sumFile.Abort()
		sumOut = sumFile
	}
	if err := peer.AnnounceListening(e.stdout, addr); err != nil {
		closeBoth()
		if gone := guard.Gone(); gone != "" {
			return outputGone(e, gone, nil)
		}
		return err
	}
	logOut := e.stderr
	if *quiet {
		logOut = io.Discard
	}
	hdr := newHeader("serve", args)
	hdr.Type, hdr.Version = bench.KindHeader, bench.RecordVersion
	hdr.Options = map[string]string{"transport": r.Spec.String(), "listen": addr, "framing": mode.String()}
	o := peer.ServeOptions{
		Echo:     echo,
		Tool:     hdr.Tool,
		Header:   hdr,
		Log:      log.New(logOut, fmt.Sprintf("ipcbench serve %d: ", os.Getpid()), log.Lmicroseconds),
		MaxConns: *maxConns,
	}
	if ctl != nil {
		o.Control = ctl
		hdr.Options["control"] = ctl.Endpoint().Address
	}
	sum, err := peer.Serve(serveCtx, ln, o)
	_, werr := fmt.Fprintf(sumOut, "ipcbench serve: stopped: %s\n", sum)
	switch {
	case sumFile == nil:
		werr = nil // stdout or stderr, as before
	case werr != nil:
		werr = summaryWriteError(*summary, werr)
	default:
		werr = sumFile.Commit()
	}
	if err != nil {
		err = fmt.Errorf("accepting on %s: %w", addr, err)
	}
	if gone := guard.Gone(); gone != "" {
		return outputGone(e, gone, werr, err)
	}
	if err != nil {
		if werr != nil {
			fmt.Fprintf(e.stderr, "ipcbench serve: %v\n", werr)
		}
		return err
	}
	return werr
}

// outputGone says on e.stderr, if it is still there, what else went
// wrong (errs, nil ones skipped) and that serve stopped because its
// output gone (stdout or stderr) went away, and returns the error of exit
// code exitOutputGone. The lines are written here, while the guard still
// catches SIGPIPE, not by exitCode.
func outputGone(e *env, gone string, errs ...error) error {
	for _, err := range errs {
		if err != nil {
			fmt.Fprintf(e.stderr, "ipcbench serve: %v\n", err)
		}
	}
	fmt.Fprintf(e.stderr, "ipcbench serve: stopped: its %s was closed (broken pipe)\n", gone)
	return &exitError{code: exitOutputGone}
}

// checkListenPort refuses -listen address for the TCP transport name when
// it has no port: the transport's Listen takes a bare host for an
// ephemeral port (what a run's own listeners want), but serve's address
// is one a client is told, host:port, as run -connect takes it.
func checkListenPort(name, address string) error {
	if name != tcplocal.Name && name != tcppublic.Name {
		return nil
	}
	if _, port, err := net.SplitHostPort(address); err != nil || port == "" {
		return usagef("-listen %s: no port; %s listens on host:port (127.0.0.1:5000; port 0 picks a free one, which the \"listening on\" line names)", address, name)
	}
	return nil
}

// defaultMaxConns is the cap of -max-conns 0 for r's connections: from
// the descriptor limit and the descriptors one of them holds, as the
// transport states it (transports.MemoryReporter), or the most any
// transport holds when it does not.
func defaultMaxConns(r all.Resolved) int {
	fds := peer.MaxDescriptorsPerConn
	if mr, ok := r.Transport.(transports.MemoryReporter); ok {
		fds = mr.MemoryPerConn(transports.Config{Options: r.Spec.Options}).Descriptors
	}
	return peer.DefaultMaxConns(fds)
}

// servableNames returns the names of the transports serve can serve, in
// all.List's order.
func servableNames() []string {
	var names []string
	for _, t := range all.List() {
		if transports.DialsByAddress(t) {
			names = append(names, t.Name())
		}
	}
	return names
}

// notServable is the usage error for -t spec, a transport serve cannot
// serve.
func notServable(spec string) error {
	return usagef("-t %s: its connections are handed to a child process as files, not dialed by address; choose another transport (see 'ipcbench serve -help')", spec)
}

// summaryWriteError is the error for err, a failed write of the summary to
// the file path: the path once, where the write's own error, a
// *fs.PathError, names the file again ("write /dev/full").
func summaryWriteError(path string, err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("writing the summary to %s: %w", path, err)
}
