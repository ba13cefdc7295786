package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
)

// transportDocs is the one-line description of each transport.
var transportDocs = map[string]string{
	"tcp-localhost": "TCP to 127.0.0.1 (TCP_NODELAY on, Multipath TCP off); options nodelay, sndbuf, rcvbuf, io=raw",
	"tcp-public":    "TCP to an address of the first up, non-loopback interface; options as tcp-localhost",
	"tcp-veth":      "TCP over a veth pair between two network namespaces of its own (10.78.0.1 <-> 10.78.0.2); options as tcp-localhost",
	"unix":          "Unix domain stream socket in a private 0700 directory; options sndbuf, rcvbuf, io=raw",
	"pipe":          "a pair of OS pipes, one per direction, inherited by the peer; options pipe_size, io=raw",
	"shm-lock":      "shared memory (memfd) byte rings guarded by a futex lock in the mapping; option mapping",
	"shm-ring":      "shared memory (memfd) lock-free rings; options wait=adaptive|spin|futex, spin_ns, mapping",
}

func cmdTransports(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "transports", `[-network netns|host]

Lists every transport and whether it can run here: each one is probed by
listening and closing again. With the default -network netns the probe runs
inside the private network namespace that 'ipcbench run' uses.`,
		`  ipcbench transports
  ipcbench transports -network host
`)
	network := fs.String("network", "netns", "netns or host, as for 'ipcbench run'")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	mode, note, code, done, err := enterNetwork(*network, append([]string{"transports"}, args...))
	if err != nil {
		return err
	}
	if done {
		return &exitError{code: code}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSPORT\tSTATUS\tDESCRIPTION")
	for _, t := range all.List() {
		status := "available"
		if err := probe(ctx, t); err != nil {
			status = "unavailable: " + err.Error()
			if !errors.Is(err, transports.ErrUnavailable) {
				status = "broken: " + err.Error()
			}
		}
		doc := transportDocs[t.Name()]
		if mo, ok := t.(transports.MeasurementOnly); ok && len(mo.MeasurementOnlyOptions()) > 0 {
			doc += "; measurement-only (never recommended by choose): " + strings.Join(mo.MeasurementOnlyOptions(), ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name(), status, doc)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nnetwork: %s\n", mode)
	if note != "" {
		fmt.Fprintf(e.stdout, "note: %s\n", note)
	}
	return nil
}

// probe listens on t and closes again.
func probe(ctx context.Context, t transports.Transport) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ln, err := t.Listen(ctx, transports.Config{})
	if err != nil {
		return err
	}
	return ln.Close()
}
