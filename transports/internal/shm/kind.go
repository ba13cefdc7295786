// Package shm is the shared-memory machinery behind the shm-lock and
// shm-ring transports: a shared mapping (a sealed memfd, or an unlinked
// 0600 file) holding a header and one byte ring per direction, futex waits,
// a liveness socket pair per connection that reports the peer's death, the
// listener that prepares channels before the peer starts, and the
// net.Conn over the two rings. The two transports differ only in how a
// ring is shared between its producer and its consumer, the Kind:
//
//   - Lock (shm-lock): a cross-process futex mutex in the mapping guards
//     the ring's indices; waiting for data or space is the wait option's,
//     as for shm-ring: by default a spin for a waiter alone in its
//     process, then a futex sleep, and the process's poller's polling and
//     doorbell (poller_linux.go) for the others; wait=futex sleeps at once.
//   - Ring (shm-ring): no lock. The producer owns a free-running head
//     counter and the consumer a free-running tail counter, each on its own
//     cache line and published with atomics (sequentially consistent in
//     Go, so release/acquire in particular); how a side waits for the
//     other is the wait option: spin, adaptive or futex.
//
// Package documentation of transports/shmlock and transports/shmring
// describes each transport's contract; layout_linux.go describes the
// mapping byte by byte.
package shm

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ipcbench/ipcbench/transports"
)

// Kind is the ring-sharing algorithm of a transport.
type Kind uint8

// The kinds.
const (
	Lock Kind = iota // shm-lock: a futex mutex guards each ring
	Ring             // shm-ring: lock-free single-producer/single-consumer rings
)

// Name returns the kind's transport name.
func (k Kind) Name() string {
	if k == Ring {
		return "shm-ring"
	}
	return "shm-lock"
}

// description is the kind's transports.Describer line.
func (k Kind) description() string {
	if k == Ring {
		return "shared memory (memfd) lock-free rings; options wait=adaptive|spin|futex, spin_ns, zerocopy, mapping"
	}
	return "shared memory (memfd) byte rings guarded by a futex lock in the mapping; options wait=adaptive|spin|futex, spin_ns, mapping"
}

// Option keys.
const (
	// OptionMapping selects the mapping: "memfd" insists on a memfd,
	// "file" uses an unlinked file in /dev/shm. Without it a memfd is
	// used, and a file when memfd_create fails. A listener with
	// Config.Address (a rendezvous any process of the user can dial) uses
	// a memfd, sealed against shrinking, whatever the option, and refuses
	// "file" at Listen (transports.ErrBadOption): a file cannot be sealed,
	// and a dialer that shrank it would crash the listening process with
	// SIGBUS; a dial by address likewise refuses a channel that is not a
	// memfd sealed against shrinking (transports.ErrBadEndpoint), since
	// whoever sent it could shrink it under the dialer. "file" is for a
	// peer that inherits its channels.
	OptionMapping = "mapping"
	// OptionWait selects how a side waits for the other: WaitSpin,
	// WaitAdaptive (the default) or WaitFutex. shm-lock waits for data or
	// space this way; its lock has a wait of its own (a short spin, then
	// the futex).
	OptionWait = "wait"
	// OptionSpinNS sets the adaptive spin budget in nanoseconds (default
	// DefaultSpin); 0 makes adaptive behave like futex. It is a
	// connection's: a waiter alone in its process spins one budget, and
	// the process's poller, waiting for n connections at once, one for
	// each of up to pollerSpinScale of them (see poller.budget).
	OptionSpinNS = "spin_ns"
	// OptionZeroCopy (shm-ring only), "on" (the default) or "off": whether
	// the connection offers its incoming bytes for reading in place
	// (transports.PeekReader). Off, a workload that would read them in
	// place copies them out with Read, which measures what the copy costs.
	OptionZeroCopy = "zerocopy"
)

// Wait strategies (OptionWait values).
const (
	// WaitSpin polls the other side's counter, yielding the processor
	// (runtime.Gosched) every spinYieldEvery polls, and never sleeps in
	// the kernel. Lowest latency when each process has a core of its own;
	// on a shared core it burns the time slice the other side needs.
	WaitSpin = "spin"
	// WaitAdaptive polls for the spin budget, then announces that it is
	// about to sleep and sleeps until the peer rings (see poller_linux.go).
	WaitAdaptive = "adaptive"
	// WaitFutex announces and sleeps at once, like a blocking pipe (the
	// name is historical for shm-ring, which sleeps on a doorbell read;
	// shm-lock's lone waiter sleeps on its futex). For shm-lock it is the
	// plain lock-and-condition baseline: a process-shared mutex and
	// condition variable do the same.
	WaitFutex = "futex"
)

// DefaultSpin is the adaptive spin budget: a little longer than a cross-core
// round trip through shared memory (0.61 µs for shm-ring's 64 B round trip
// cross-core on the 2-vCPU VM of results/reference.jsonl: ipcbench report
// results/reference.jsonl) times the few round trips a request/response
// exchange takes, and far shorter than a wake-up of a sleeping core (53.3 µs
// for shm-ring[wait=futex]'s cross-core round trip in results/floor.md).
const DefaultSpin = 20 * time.Microsecond

// maxSpin bounds OptionSpinNS.
const maxSpin = time.Second

// settings are a channel's options after validation.
type settings struct {
	mapping string        // "", mappingMemfd or mappingFile
	wait    string        // WaitSpin, WaitAdaptive or WaitFutex
	spin    time.Duration // the adaptive spin budget
	noPeek  bool          // Ring: zerocopy=off
}

// parseOptions validates opts for kind k.
func parseOptions(k Kind, opts map[string]string) (settings, error) {
	keys := []string{OptionMapping, OptionWait, OptionSpinNS}
	if k == Ring {
		keys = append(keys, OptionZeroCopy)
	}
	if err := transports.CheckOptions(k.Name(), opts, keys...); err != nil {
		return settings{}, err
	}
	s := settings{wait: WaitAdaptive, spin: DefaultSpin}
	if v, ok := opts[OptionMapping]; ok {
		if v != mappingMemfd && v != mappingFile {
			return settings{}, fmt.Errorf("%s: option %s=%q: want %q or %q: %w", k.Name(), OptionMapping, v, mappingMemfd, mappingFile, transports.ErrBadOption)
		}
		s.mapping = v
	}
	if v, ok := opts[OptionZeroCopy]; ok {
		if v != "on" && v != "off" {
			return settings{}, fmt.Errorf("%s: option %s=%q: want on or off: %w", k.Name(), OptionZeroCopy, v, transports.ErrBadOption)
		}
		s.noPeek = v == "off"
	}
	if v, ok := opts[OptionWait]; ok {
		if v != WaitSpin && v != WaitAdaptive && v != WaitFutex {
			return settings{}, fmt.Errorf("%s: option %s=%q: want %s, %s or %s: %w", k.Name(), OptionWait, v, WaitSpin, WaitAdaptive, WaitFutex, transports.ErrBadOption)
		}
		s.wait = v
	}
	if v, ok := opts[OptionSpinNS]; ok {
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ns < 0 || time.Duration(ns) > maxSpin {
			return settings{}, fmt.Errorf("%s: option %s=%q: want nanoseconds from 0 to %d: %w", k.Name(), OptionSpinNS, v, maxSpin.Nanoseconds(), transports.ErrBadOption)
		}
		s.spin = time.Duration(ns)
	}
	return s, nil
}

// CheckOptions reports whether Listen and Dial accept opts (mapping, wait,
// spin_ns; for shm-ring also zerocopy); see transports.OptionChecker.
func (t transport) CheckOptions(opts map[string]string) error {
	_, err := parseOptions(t.kind, opts)
	return err
}

var _ transports.OptionChecker = transport{}

// MeasurementOnlyOptions returns, for shm-ring, "zerocopy=off": it only
// measures the copy that zero-copy reading saves (transports.MeasurementOnly).
// shm-lock has none.
func (t transport) MeasurementOnlyOptions() []string {
	if t.kind == Ring {
		return []string{OptionZeroCopy + "=off"}
	}
	return nil
}

var _ transports.MeasurementOnly = transport{}

// ListenerOnlyOptions returns "mapping": the listener makes the mapping,
// and a dialer attaches to whatever it was sent (transports.ListenerOnly).
func (t transport) ListenerOnlyOptions() []string { return []string{OptionMapping} }

var _ transports.ListenerOnly = transport{}

// DefaultOptions returns wait=adaptive and spin_ns at DefaultSpin, and for
// shm-ring zerocopy=on, the defaults spelled out
// (transports.DefaultOptioner). mapping has none: mapping=memfd refuses
// the file fallback that leaving it out allows.
func (t transport) DefaultOptions() []string {
	d := []string{OptionWait + "=" + WaitAdaptive, OptionSpinNS + "=" + strconv.FormatInt(DefaultSpin.Nanoseconds(), 10)}
	if t.kind == Ring {
		d = append(d, OptionZeroCopy+"=on")
	}
	return d
}

// CanonicalValue returns spin_ns in one spelling, its decimal number of
// nanoseconds ("20000" for "020000" or "+20000"), other values as they
// are (transports.OptionSpeller).
func (t transport) CanonicalValue(key, value string) string {
	if key != OptionSpinNS {
		return value
	}
	ns, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return value
	}
	return strconv.FormatInt(ns, 10)
}

var (
	_ transports.DefaultOptioner = transport{}
	_ transports.OptionSpeller   = transport{}
)

// effectiveOptions returns what a connection or listener of kind k
// reports through transports.OptionReporter.
func effectiveOptions(k Kind, ringCap int, mapping string, s settings) map[string]string {
	m := map[string]string{
		"ring_bytes": strconv.Itoa(ringCap),
		"mapping":    mapping,
	}
	m[OptionWait] = s.wait
	if s.wait == WaitAdaptive {
		m[OptionSpinNS] = strconv.FormatInt(s.spin.Nanoseconds(), 10)
	}
	if k == Ring {
		m["lock"] = "none"
		m[OptionZeroCopy] = "on"
		if s.noPeek {
			m[OptionZeroCopy] = "off"
		}
	} else {
		m["lock"] = "futex-mutex"
	}
	return m
}
