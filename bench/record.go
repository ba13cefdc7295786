package bench

import "time"

// RecordVersion is the version of the raw-record schema written in every
// header. Readers refuse records with a newer major version.
const RecordVersion = 1

// Record kinds, the "type" field of every JSON Lines record.
const (
	KindHeader = "header"
	KindResult = "result"
)

// Header is the first record of a raw file: the environment a run happened
// in and the options it ran with. A result without its header cannot be
// cited.
type Header struct {
	Type    string    `json:"type"` // always KindHeader
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	// Tool is "ipcbench" plus its version or commit.
	Tool string `json:"tool"`
	// Machine holds machine facts: kernel, cpu_model, cores, gomaxprocs,
	// go_version, goos, goarch, hostname, clock_read_ns, ...
	Machine map[string]string `json:"machine"`
	// Network says where sockets ran: "private-netns" (the default, a
	// namespace ipcbench made with lo and a veth pair) or "host".
	Network string `json:"network"`
	// NetworkNote explains a fallback (why no namespace could be made).
	NetworkNote string `json:"network_note,omitempty"`
	// Options are the options the run went by, after defaults were filled
	// in (workloads, sizes, durations, repeats, warm-up, placements, rate,
	// conns...): what was measured, not only what was typed.
	Options map[string]string `json:"options"`
	// Command is the command line that produced the file.
	Command []string `json:"command,omitempty"`
}

// Status values of a Result.
const (
	StatusOK      = "ok"
	StatusSkipped = "skipped" // the transport or pair cannot run here; Reason says why
	StatusFailed  = "failed"  // the case ran and failed (peer died, data mismatch, timeout)
)

// Latency kinds: every latency figure is labelled.
const (
	LatencyRoundTrip = "round-trip"
	LatencyNone      = "" // the workload records no per-message latency (stream)
)

// Result is one measured interval of one case: a workload over one transport
// variant at one message size, connection count and placement, in one
// repeat.
type Result struct {
	Type string `json:"type"` // always KindResult

	Workload  string `json:"workload"`          // pingpong, stream, fanin, connect, rate
	Transport string `json:"transport"`         // stable transport name
	Variant   string `json:"variant,omitempty"` // named variant ("nodelay=false"), empty for the default
	Size      int    `json:"size"`              // payload bytes per message
	Conns     int    `json:"conns"`             // concurrent connections
	Rate      int    `json:"rate,omitempty"`    // target messages/s for the rate workload
	Placement string `json:"placement"`         // unpinned, same-core, cross-core, or "cpus=B/P" (bench/peer CPU lists: "cpus=0/1")
	Repeat    int    `json:"repeat"`            // 0-based repeat index
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`

	// DurationNS is the measured interval (warm-up excluded), monotonic clock.
	DurationNS int64 `json:"duration_ns"`
	// Messages counts messages completed in the interval: round trips for
	// request/response workloads, messages received (by the receiver's
	// count) for stream.
	Messages int64 `json:"messages"`
	// Bytes counts payload bytes moved in the interval, one direction.
	Bytes int64 `json:"bytes"`
	// Errors counts messages that failed a check.
	Errors int64 `json:"errors"`

	// LatencyKind labels Hist: LatencyRoundTrip or LatencyNone.
	LatencyKind string `json:"latency_kind,omitempty"`
	// Hist is the latency histogram of the interval in HdrHistogram's
	// compressed, base64 encoding (see internal/hist); values in ns.
	Hist string `json:"hist,omitempty"`
	// SampleEvery, when above 1, says the histogram holds one exchange in
	// SampleEvery: round trips below a few microseconds are sampled rather
	// than all timed, because each clock read costs tens of nanoseconds.
	// Messages still counts every exchange.
	SampleEvery int `json:"sample_every,omitempty"`
	// Achieved is the rate actually achieved (msg/s) for the rate workload.
	Achieved float64 `json:"achieved,omitempty"`

	// CPU time over the measured interval, in ns, of the bench process and
	// of the peer process.
	BenchUserNS int64 `json:"bench_user_ns"`
	BenchSysNS  int64 `json:"bench_sys_ns"`
	PeerUserNS  int64 `json:"peer_user_ns"`
	PeerSysNS   int64 `json:"peer_sys_ns"`

	// BenchCPUs and PeerCPUs record where each end actually ran during the
	// measured interval: the CPUs its threads were seen on when sampled,
	// each with its sample count, most-seen first ("0:10,1:3": ten samples
	// on CPU 0, three on CPU 1).
	BenchCPUs string `json:"bench_cpus,omitempty"`
	PeerCPUs  string `json:"peer_cpus,omitempty"`

	// Options are the transport options in effect, read back where possible.
	Options map[string]string `json:"options,omitempty"`
}

// Case returns the identity of r without its repeat index: results with the
// same Case are repeats of one another.
func (r *Result) Case() Case {
	return Case{Workload: r.Workload, Transport: r.Transport, Variant: r.Variant, Size: r.Size, Conns: r.Conns, Rate: r.Rate, Placement: r.Placement}
}

// Case identifies one benchmark case across repeats.
type Case struct {
	Workload  string
	Transport string
	Variant   string
	Size      int
	Conns     int
	Rate      int
	Placement string
}

// TransportLabel is the transport name with its variant, as reports show it:
// "unix" or "tcp-localhost[nodelay=false]".
func (c Case) TransportLabel() string {
	if c.Variant == "" {
		return c.Transport
	}
	return c.Transport + "[" + c.Variant + "]"
}
