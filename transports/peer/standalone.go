package peer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/transports"
)

// ServeArg is the first argument that makes a program run as a stand-alone
// server: `ipcbench serve`, or RunIfPeer in a program that imports
// ipcbench when a runner starts it so (bench's serve peer source).
const ServeArg = "serve"

// ListeningPrefix starts the line a stand-alone server writes on stdout
// once it listens, followed by the address to dial and a newline.
const ListeningPrefix = "listening on "

// AnnounceListening writes the line that tells whoever started a
// stand-alone server where it listens: ListeningPrefix and addr. A server
// started by a runner (the peer cookie is set, see IsPeer) first writes
// the peer handshake, so the runner starts it as it starts a peer.
func AnnounceListening(w io.Writer, addr string) error {
	if IsPeer() {
		if err := proc.Announce(w); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(w, ListeningPrefix+addr+"\n"); err != nil {
		return fmt.Errorf("writing the listening line: %w", err)
	}
	return nil
}

// ServeMain is the stand-alone server of a program that imports ipcbench:
// args are "-t SPEC -listen ADDRESS" (the arguments after ServeArg), and
// it listens with the spec's transport (found by lookup) and options,
// and for a transport dialed through a rendezvous on its control socket
// too (ListenControl), announces the address (AnnounceListening) and
// serves (Serve) until ctx ends. It returns 0 then, 2 for bad arguments
// (options the transport refuses included, found before listening or by
// a Listen that refuses them by address with transports.ErrBadOption, as
// shm-* do mapping=file, and a transport whose listener hands its
// channels down as files, which nothing dials by address) and 1 when it
// cannot listen (at the address or on the control socket), announce or
// serve, with the reason on stderr. The `ipcbench serve` command is the same server with more
// flags, and exits differently in one case: an address it cannot listen
// on is a usage error there, exit 2, as it is the user's -listen; it
// exits 1 when it cannot announce or serve.
func ServeMain(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(name string) (transports.Transport, error)) int {
	fs := flag.NewFlagSet(ServeArg, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	specText := fs.String("t", "", "transport spec")
	listen := fs.String("listen", "", "address")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *specText == "" || *listen == "" {
		fmt.Fprintf(stderr, "ipcbench serve: want -t SPEC -listen ADDRESS, got %q\n", strings.Join(args, " "))
		return 2
	}
	sp, err := transports.ParseSpec(*specText)
	if err != nil {
		fmt.Fprintf(stderr, "ipcbench serve: -t: %v\n", err)
		return 2
	}
	tr, err := lookup(sp.Name)
	if err != nil {
		fmt.Fprintf(stderr, "ipcbench serve: -t: %v\n", err)
		return 2
	}
	if oc, ok := tr.(transports.OptionChecker); ok {
		if err := oc.CheckOptions(sp.Options); err != nil {
			fmt.Fprintf(stderr, "ipcbench serve: -t: %v\n", err)
			return 2
		}
	}
	notByAddress := func() int {
		fmt.Fprintf(stderr, "ipcbench serve: -t %s: its connections are handed to a child process as files, not dialed by address; choose another transport\n", *specText)
		return 2
	}
	if !transports.DialsByAddress(tr) {
		return notByAddress()
	}
	ln, err := tr.Listen(ctx, transports.Config{Address: *listen, Options: sp.Options})
	if errors.Is(err, transports.ErrBadOption) {
		// An option the transport takes, but not by address (shm-*'s
		// mapping=file): the spec's fault.
		fmt.Fprintf(stderr, "ipcbench serve: -t %s: %v\n", *specText, err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "ipcbench serve: cannot listen on %s: %v\n", *listen, err)
		return 1
	}
	if ep := ln.Endpoint(); len(ep.Files) > 0 || ep.Address == "" {
		// What DialsByAddress says of a transport, seen on its listener.
		ln.Close()
		return notByAddress()
	}
	o := ServeOptions{Log: log.New(stderr, fmt.Sprintf("ipcbench serve %d: ", os.Getpid()), log.Lmicroseconds)}
	ctl, err := ListenControl(ctx, tr, ln.Endpoint().Address)
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "ipcbench serve: cannot listen on %s: %v\n", *listen, err)
		return 1
	}
	if ctl != nil {
		o.Control = ctl
	}
	if err := AnnounceListening(stdout, ln.Endpoint().Address); err != nil {
		if ctl != nil {
			ctl.Close()
		}
		ln.Close()
		fmt.Fprintf(stderr, "ipcbench serve: %v\n", err)
		return 1
	}
	logger := o.Log
	if _, err := Serve(ctx, ln, o); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}

// serveIfAsked runs ServeMain, until SIGINT or SIGTERM, when args (this
// process's arguments after its name) start with ServeArg, and exits
// with its status; otherwise it returns.
func serveIfAsked(args []string, lookup func(name string) (transports.Transport, error)) {
	if len(args) == 0 || args[0] != ServeArg {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ServeMain(ctx, args[1:], os.Stdout, os.Stderr, lookup)
	stop()
	os.Exit(code)
}
