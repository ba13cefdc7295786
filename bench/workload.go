package bench

import (
	"context"
	"sort"
)

// workload is one benchmark pattern. Every workload runs between the bench
// process (which measures) and a peer process that serves role.
type workload struct {
	name string
	// doc is the one-line description shown by --help and reports.
	doc string
	// role is the peer's role (transports/peer): "echo" or "sink".
	role string
	// multiConn: the case is planned once per Options.FaninConns value.
	multiConn bool
	// smallOnly: only the first of Options.Sizes is planned (the
	// smallest of the default list); see FirstSizeOnly.
	smallOnly bool
	// connect: the case hands endpoints to the peer per exchange instead
	// of accepting connections up front (see connect.go).
	connect bool
	// notEcho says why the workload cannot run against an echo server
	// (Remote.Echo), completing "the NAME workload ..."; "" when it can.
	notEcho string
	// unframed: the workload's messages are not framed with
	// Options.Frame (HTTP frames its own).
	unframed bool
	// unsupported maps transports that cannot run this workload to why.
	unsupported map[string]string
	run         func(ctx context.Context, cr *caseRun) (measurement, error)
}

func (w *workload) cannotRun(transport string) string { return w.unsupported[transport] }

// workloads is the explicit list of workloads (no init-time registry).
var workloads = []*workload{pingpongWorkload, streamWorkload, faninWorkload, connectWorkload, rateWorkload, httpWorkload}

func workloadByName(name string) *workload {
	for _, w := range workloads {
		if w.name == name {
			return w
		}
	}
	return nil
}

// Workloads returns the names of all workloads, sorted.
func Workloads() []string {
	out := make([]string, len(workloads))
	for i, w := range workloads {
		out[i] = w.name
	}
	sort.Strings(out)
	return out
}

// WorkloadDoc returns the one-line description of a workload, or "".
func WorkloadDoc(name string) string {
	if w := workloadByName(name); w != nil {
		return w.doc
	}
	return ""
}

// FirstSizeOnly reports whether the named workload runs at the first of
// Options.Sizes only, whatever else the list holds (fanin, rate and
// connect: their cases multiply by connection counts or rates instead).
// It returns false for an unknown name.
func FirstSizeOnly(name string) bool {
	w := workloadByName(name)
	return w != nil && w.smallOnly
}

// UsesFraming reports whether the named workload frames its messages with
// Options.Frame (every one but http, which HTTP frames). It returns false
// for an unknown name.
func UsesFraming(name string) bool {
	w := workloadByName(name)
	return w != nil && !w.unframed
}

// EchoWorkloads returns the workloads that can run against any echo server
// (Remote.Echo), in the order they are planned.
func EchoWorkloads() []string {
	var out []string
	for _, w := range workloads {
		if w.notEcho == "" {
			out = append(out, w.name)
		}
	}
	return out
}

// NotEcho returns why the named workload cannot run against an echo server
// (Remote.Echo), as words that follow "the NAME workload": "needs the
// receiver's acknowledgement, ...". It returns "" for a workload that can,
// and for an unknown one.
func NotEcho(name string) string {
	if w := workloadByName(name); w != nil {
		return w.notEcho
	}
	return ""
}
