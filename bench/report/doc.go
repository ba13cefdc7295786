// Package report turns ipcbench raw records into summaries, rankings and
// rendered reports, and compares two runs.
//
// Everything here is derived from the raw records that `ipcbench run`
// writes (package bench: one Header, then one Result per measured interval),
// so a report can always be regenerated from the file it names.
//
// The statistics follow docs/methodology.md (§4, §6, §13) and benchstat:
//
//   - Latency is reported as a distribution (p50, p90, p99, p99.9, max, with
//     the mean beside them), and every latency is a round trip measured in
//     the bench process; reports label it so.
//   - Each case runs several times. The central value of a metric is the
//     median of the per-repeat values, with a distribution-free 95%
//     confidence interval computed by golang.org/x/perf/benchmath, the
//     library benchstat uses. With fewer than 6 repeats that interval is
//     unbounded (±∞), exactly as benchstat reports it.
//   - Two cases differ only when a Mann-Whitney U test on their per-repeat
//     values rejects "same distribution" at α = 0.05; otherwise reports show
//     "~", which means what it means in benchstat.
//   - A case whose repeats fall into two modes more than 2× apart is flagged
//     as bimodal, with the modes listed, rather than blended into one number.
package report
