// Package bench runs ipcbench's workloads over the transports between two
// processes and records what they measured: the engine behind `ipcbench
// run`, for a program that runs the benchmarks itself.
//
// A run is planned from Options (transports and their variants,
// workloads, sizes, placements, repeats, durations or message counts;
// zero fields take the defaults) by NewRunner, which refuses a bad value
// with an *OptionError naming the field (errors.Is ErrBadOptions).
// Runner.Run measures every case of the plan in turn, each against a fresh
// peer process (by default the program itself, so its main must start
// with peer.RunIfPeer; forgotten, the copy started as the peer fails at
// once with peer.ErrStartFromPeer instead of starting copies of its own,
// and Run fails with ErrPeerStart, saying how the copy ended), or against
// a server already running at an address (Options.Remote, as `ipcbench
// run -connect` does), and writes one raw record per case run to its
// writer as it goes: a Header line, then one Result per case and repeat,
// JSON lines that ReadRecords reads back and packages report, plot and
// choose summarise. A case that fails is recorded with its reason and the
// run goes on; Run's error then wraps ErrCasesFailed, or ErrNothingMeasured
// when every case was skipped (it cannot run here). CreateOutput and
// CreateNumberedOutput make the records file: nothing takes its name
// before Output.Commit (or Keep).
//
// Every number follows the same rules: latencies are round trips timed in
// the bench process with the monotonic clock into a histogram, every
// payload byte is checked, CPU time covers both processes, and a case
// during which this process was stopped (Ctrl-Z) is measured again
// (ErrSelfStopped when it kept being stopped).
package bench
