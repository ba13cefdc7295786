package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/choose"
	"github.com/ipcbench/ipcbench/internal/progress"
	"github.com/ipcbench/ipcbench/transports"
)

const chooseSynopsis = `-w WORKLOAD -s SIZE [flags]

Answers "which transport is fastest on this machine for my messages?" with
a short calibration: the real runner, two real processes, every transport
that can run here (or those of -t), six interleaved repeats, planned to take
under 30 s. It prints the winner as a spec to paste into all.Listen/all.Dial
or 'ipcbench run -t', the transports statistically tied with it (~), each
with its 95% interval, and the CPU time per message beside the speed.
Transports that cannot run here are listed with the reason. A variant a
transport marks measurement-only (see 'ipcbench transports') is never
recommended.

-from FILE answers from raw records that 'ipcbench run' wrote, without
measuring, over every transport FILE holds, or over those of -t, which
must all be in it (-budget, -network, -out and -force shape a calibration
and are refused with it); when FILE has no case of the size asked for, the
nearest measured size answers, and the answer says so.

Workloads (-w): pingpong (request/response, ranked by p50 round trip;
with -conns N > 1 it is fanin, ranked by msg/s), stream (one-way, ranked by
MB/s), http (net/http POST echoed back, keep-alive on, ranked by p50).

The calibration runs inside a private network namespace, as 'ipcbench run'
does (-network host to measure on the host's own interfaces).`

const chooseExamples = `  ipcbench choose -w pingpong -s 4k                 # which transport for 4 KiB request/response here?
  ipcbench choose -w stream -s 1MiB                 # bulk one-way transfer
  ipcbench choose -w pingpong -s 64 -conns 16       # 16 clients against one server
  ipcbench choose -w http -s 1k                     # net/http over each transport
  ipcbench choose -w pingpong -s 4k -placement cross-core -t unix,shm-ring,shm-ring[wait=spin]
  ipcbench choose -w pingpong -s 4k -from results/reference.jsonl   # no measuring
  ipcbench choose -w pingpong -s 4k -format json | jq -r .winner
`

func cmdChoose(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "choose", chooseSynopsis, chooseExamples)
	workload := fs.String("w", choose.Pingpong, "workload: pingpong, stream or http")
	size := fs.String("s", "", "message size, binary units (4k = 4096 B), at most "+bench.FormatSize(bench.MaxMessageSize)+"; required")
	placement := fs.String("placement", "unpinned", "where the two processes run: unpinned, same-core, cross-core, or BENCHCPUS/PEERCPUS like 0/1")
	conns := fs.Int("conns", 1, fmt.Sprintf("connections sharing one server, 1 to %d (pingpong only; more than 1 measures fanin)", bench.MaxFaninConns))
	from := fs.String("from", "", "answer from this raw-records file (- for stdin) instead of measuring")
	format := fs.String("format", "text", "output: text or json")
	trs := fs.String("t", "all", "transports to consider, comma-separated, each once, with variants: unix,shm-ring[wait=spin]")
	budget := fs.Duration("budget", choose.DefaultBudget, "wall time the calibration is planned to fit in; one too short for every case run's shortest interval and warm-up is refused")
	out := fs.String("out", "", "also write the calibration's raw records to this file, a new file (see -force); missing directories are created")
	force := fs.Bool("force", false, "replace an existing -out file, once the new one is complete (never through a symbolic link)")
	network := fs.String("network", "netns", "netns: measure inside a private network namespace; host: on this host's own interfaces")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *size == "" {
		return usagef("-s SIZE is required (for example -s 4k)")
	}
	n, err := bench.ParseSize(*size, bench.MaxMessageSize)
	if err != nil {
		return usagef("-s: %v", err)
	}
	if *format != "text" && *format != "json" {
		return usagef("-format %q: want text or json", *format)
	}
	if *conns < 1 || *conns > bench.MaxFaninConns {
		return usagef("-conns %d: want 1 to %d", *conns, bench.MaxFaninConns)
	}
	if *budget <= 0 {
		return usagef("-budget %v: must be positive", *budget)
	}
	q := choose.Question{Workload: *workload, Size: n, Placement: *placement, Conns: *conns}

	var ans *choose.Answer
	if *from != "" {
		// -budget, -network, -out and -force shape a calibration; quietly
		// ignored with -from, they would promise what does not happen.
		var calib []string
		fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "budget", "network", "out", "force":
				calib = append(calib, "-"+fl.Name)
			}
		})
		if len(calib) > 0 {
			return usagef("%s: only a calibration uses it; -from answers from the file's records", strings.Join(calib, ", "))
		}
		only, err := transports.ParseSpecList(*trs)
		if err != nil {
			return usagef("-t: %v", err)
		}
		// The question, -t included, is checked before the file is read.
		if _, err := choose.FromRun(&bench.Records{}, q, only...); errors.Is(err, choose.ErrBadQuestion) {
			return questionError(err)
		}
		run, err := readInput(ctx, e, *from, readResults)
		var ue *usageError
		if errors.As(err, &ue) {
			return usagef("-from: %s", ue.msg)
		}
		if err != nil {
			return err
		}
		if ans, err = choose.FromRun(run, q, only...); err != nil {
			if errors.Is(err, choose.ErrBadQuestion) {
				return questionError(err)
			}
			return err
		}
	} else {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this executable to start peers: %w", err)
		}
		o := choose.Options{Transports: []string{*trs}, Budget: *budget, Peer: exe, PeerArgs: []string{"peer"}}
		// Everything is checked before the namespace is made and before
		// anything runs.
		if _, err := choose.New(q, o); err != nil {
			return questionError(err)
		}
		netMode, netNote, code, done, err := enterNetwork(*network, append([]string{"choose"}, args...))
		if err != nil {
			return err
		}
		if done {
			return &exitError{code: code}
		}
		if netNote != "" {
			fmt.Fprintf(e.stderr, "ipcbench choose: note: %s\n", netNote)
		}
		var rawFile *bench.Output
		if *out != "" {
			if rawFile, err = createOutput("-out", *out, *force); err != nil {
				return err
			}
			defer rawFile.Abort()
			o.Records = rawFile
		}
		o.Header = newHeader("choose", args)
		o.Header.Network, o.Header.NetworkNote = netMode, netNote
		c, err := choose.New(q, o)
		if err != nil {
			return questionError(err)
		}
		disp := progress.Start(e.stderr, true, progress.DefaultInterval, func() progress.Snapshot {
			d, t, l := c.Progress()
			return progress.Snapshot{Done: d, Total: t, Label: l}
		})
		ans, err = c.Run(ctx)
		disp.Stop()
		if rawFile != nil {
			// Like run's -out: complete records take the name; those of a
			// calibration cut short take it only if it was free.
			if err == nil {
				err = rawFile.Commit()
			} else {
				keepRecords(e, "choose", rawFile)
			}
		}
		switch {
		case errors.Is(err, bench.ErrPeerStart):
			return &exitError{code: exitPeerStart, err: err}
		case err != nil && ctx.Err() != nil:
			return &exitError{code: exitInterrupted, err: err}
		case err != nil:
			return err
		}
	}
	if *format == "json" {
		b, err := json.MarshalIndent(ans, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	return ans.WriteText(e.stdout)
}

// questionError is the usage error for err, a choose.ErrBadQuestion, in
// the user's terms: without the sentinels' texts, and naming the flag of
// the field it is about (a *choose.QuestionError's): -t for a transport
// spec or a transport given twice, -placement, -w, ...
func questionError(err error) error {
	msg := withoutSentinels(err, choose.ErrBadQuestion, bench.ErrBadOptions)
	var qe *choose.QuestionError
	if !errors.As(err, &qe) {
		return usagef("%s", msg)
	}
	if fl, ok := questionFlags[qe.Field]; ok {
		return usagef("%s", flagLed(fl, msg, "workload"))
	}
	return usagef("%s", msg)
}

// questionFlags are the flags of choose that set the fields of
// choose.Question and choose.Options a *choose.QuestionError names.
var questionFlags = map[string]string{
	"Workload":   "-w",
	"Size":       "-s",
	"Placement":  "-placement",
	"Conns":      "-conns",
	"Transports": "-t",
	"Budget":     "-budget",
}
