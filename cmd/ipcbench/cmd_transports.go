package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
)

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
	var rows []transportRow
	for _, t := range all.List() {
		doc := transports.Describe(t)
		if mo, ok := t.(transports.MeasurementOnly); ok && len(mo.MeasurementOnlyOptions()) > 0 {
			doc += "; measurement-only (never recommended by choose): " + strings.Join(mo.MeasurementOnlyOptions(), ", ")
		}
		rows = append(rows, transportRow{name: t.Name(), doc: doc, err: probe(ctx, t)})
	}
	if err := writeTransports(e.stdout, rows); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nnetwork: %s\n", mode)
	if note != "" {
		fmt.Fprintf(e.stdout, "note: %s\n", note)
	}
	return nil
}

// transportRow is one transport of the list: its name, description and
// what probing it gave.
type transportRow struct {
	name, doc string
	err       error
}

// writeTransports writes the table of rows, with a short status in it
// (available, unavailable, broken) and each reason below, where a long
// one does not widen the column of every row.
func writeTransports(w io.Writer, rows []transportRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSPORT\tSTATUS\tDESCRIPTION")
	var reasons []string
	for _, r := range rows {
		status := "available"
		if r.err != nil {
			status = "unavailable"
			if !errors.Is(r.err, transports.ErrUnavailable) {
				status = "broken"
			}
			reasons = append(reasons, fmt.Sprintf("%s %s: %s", r.name, status, reason(r.name, r.err)))
			status += " (below)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, status, r.doc)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(reasons) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(reasons, "\n"))
	}
	return nil
}

// reason is err, the probe's error for the transport name, without what
// the line already says: the name and "transport unavailable".
func reason(name string, err error) string {
	msg := strings.TrimPrefix(err.Error(), name+": ")
	msg = strings.TrimPrefix(msg, transports.ErrUnavailable.Error()+": ")
	return strings.TrimSuffix(msg, ": "+transports.ErrUnavailable.Error())
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
