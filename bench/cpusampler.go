package bench

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipcbench/ipcbench/internal/sysinfo"
)

// cpuSampleInterval is how often the sampler looks at where the two
// processes' threads are.
const cpuSampleInterval = 50 * time.Millisecond

// cpuSource returns, per CPU, the weight one process gained there since
// its previous call: ns of run time (CPUsUnitMS) or sighted threads
// (CPUsUnitSamples).
type cpuSource func() (map[int]int64, error)

// cpuSampler records on which CPUs the two processes actually ran during
// the measured interval, and whether the peer was seen stopped then (docs/methodology.md §13: unpinned runs are bimodal, so
// where each end ran is part of the result).
type cpuSampler struct {
	sources [2]cpuSource // bench, peer
	unit    string       // CPUsUnitMS or CPUsUnitSamples
	// peerPID, when not 0, is the peer process, which every sample also
	// looks at for a stop (SIGSTOP): peerStopped records one seen.
	peerPID     int
	stopped     func(pid int) bool
	peerStopped atomic.Bool
	weights     [2]map[int]int64
	// closers release what the sources hold open (run by stop).
	closers  []func() error
	disabled bool
	started  bool
	quit     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	mu       sync.Mutex
}

// newCPUSampler returns a sampler of the bench process and the peer; it
// samples nothing until start. It weighs CPUs by run time where the kernel
// has per-thread schedstat, else by sample counts (CPUsUnit says which).
func newCPUSampler(benchPID, peerPID int) *cpuSampler {
	var sources [2]cpuSource
	unit := CPUsUnitMS
	if !sysinfo.HasSchedstat() {
		unit = CPUsUnitSamples
	}
	var closers []func() error
	for i, pid := range []int{benchPID, peerPID} {
		ts := sysinfo.NewThreadSampler(pid)
		closers = append(closers, ts.Close)
		if unit == CPUsUnitMS {
			sources[i] = func() (map[int]int64, error) {
				d, err := ts.RunTime()
				m := make(map[int]int64, len(d))
				for c, v := range d {
					m[c] = v.Nanoseconds()
				}
				return m, err
			}
			continue
		}
		sources[i] = func() (map[int]int64, error) {
			cpus, err := ts.Sample()
			m := make(map[int]int64, len(cpus))
			for _, c := range cpus {
				m[c]++
			}
			return m, err
		}
	}
	s := newCPUSamplerFrom(sources, unit)
	s.peerPID, s.stopped = peerPID, sysinfo.Stopped
	s.closers = closers
	return s
}

// newCPUSamplerFrom returns a sampler reading the bench and peer sources,
// whose weights are in unit.
func newCPUSamplerFrom(sources [2]cpuSource, unit string) *cpuSampler {
	return &cpuSampler{
		sources: sources,
		unit:    unit,
		weights: [2]map[int]int64{{}, {}},
		quit:    make(chan struct{}),
	}
}

// start samples now and then every cpuSampleInterval until stop, unless
// the sampler is disabled.
func (s *cpuSampler) start() {
	if s.disabled {
		return
	}
	s.started = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(cpuSampleInterval)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
		}
	}()
}

// sample adds the weights both processes gained since the previous
// sample, and notes a peer seen stopped.
func (s *cpuSampler) sample() {
	if s.peerPID > 0 && s.stopped(s.peerPID) {
		s.peerStopped.Store(true)
	}
	for i, src := range s.sources {
		m, err := src()
		if err != nil {
			continue
		}
		s.mu.Lock()
		for c, w := range m {
			s.weights[i][c] += w
		}
		s.mu.Unlock()
	}
}

// stop ends sampling, waits for the sampling goroutine and, if sampling
// had started, takes a last sample so that the run time since the previous
// one counts; then it closes the files the sources kept open. It may be
// called more than once, and without start.
func (s *cpuSampler) stop() {
	s.once.Do(func() {
		close(s.quit)
		s.wg.Wait()
		if s.started {
			s.sample()
		}
		for _, c := range s.closers {
			c()
		}
	})
}

// result renders the weights as "cpu:weight" lists, heaviest first, in the
// returned unit (Result.BenchCPUs, PeerCPUs and CPUsUnit); all empty if
// nothing was seen.
func (s *cpuSampler) result() (bench, peer, unit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := func(m map[int]int64) string {
		type kv struct {
			cpu int
			w   int64
		}
		var l []kv
		for c, w := range m {
			if w > 0 {
				l = append(l, kv{c, w})
			}
		}
		sort.Slice(l, func(i, j int) bool { return l[i].w > l[j].w || (l[i].w == l[j].w && l[i].cpu < l[j].cpu) })
		parts := make([]string, len(l))
		for i, e := range l {
			w := e.w
			if s.unit == CPUsUnitMS {
				w = (w + 500_000) / 1_000_000 // ns to ms, rounded
			}
			parts[i] = strconv.Itoa(e.cpu) + ":" + strconv.FormatInt(w, 10)
		}
		return strings.Join(parts, ",")
	}
	bench, peer = f(s.weights[0]), f(s.weights[1])
	if bench == "" && peer == "" {
		return "", "", ""
	}
	return bench, peer, s.unit
}
