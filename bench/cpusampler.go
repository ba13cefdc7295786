package bench

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipcbench/ipcbench/internal/sysinfo"
)

// cpuSampleInterval is how often the sampler looks at where the two
// processes' threads are.
const cpuSampleInterval = 50 * time.Millisecond

// cpuSampler records on which CPUs the two processes actually ran during
// the measured interval (docs/methodology.md §13: unpinned runs are bimodal, so
// where each end ran is part of the result).
type cpuSampler struct {
	samplers [2]*sysinfo.ThreadSampler
	counts   [2]map[int]int
	disabled bool
	quit     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	mu       sync.Mutex
}

// newCPUSampler returns a sampler of the bench process and the peer; it
// samples nothing until start.
func newCPUSampler(benchPID, peerPID int) *cpuSampler {
	return &cpuSampler{
		samplers: [2]*sysinfo.ThreadSampler{sysinfo.NewThreadSampler(benchPID), sysinfo.NewThreadSampler(peerPID)},
		counts:   [2]map[int]int{{}, {}},
		quit:     make(chan struct{}),
	}
}

// start samples now and then every cpuSampleInterval until stop, unless
// the sampler is disabled.
func (s *cpuSampler) start() {
	if s.disabled {
		return
	}
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

// sample counts the CPU each thread of both processes is on now.
func (s *cpuSampler) sample() {
	for i, ts := range s.samplers {
		cpus, err := ts.Sample()
		if err != nil {
			continue
		}
		s.mu.Lock()
		for _, c := range cpus {
			s.counts[i][c]++
		}
		s.mu.Unlock()
	}
}

// stop ends sampling and waits for the sampling goroutine. It may be
// called more than once, and without start.
func (s *cpuSampler) stop() {
	s.once.Do(func() { close(s.quit) })
	s.wg.Wait()
}

// result renders the samples as "cpu:count" lists, most frequent first.
func (s *cpuSampler) result() (bench, peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := func(m map[int]int) string {
		type kv struct{ cpu, n int }
		var l []kv
		for c, n := range m {
			l = append(l, kv{c, n})
		}
		sort.Slice(l, func(i, j int) bool { return l[i].n > l[j].n || (l[i].n == l[j].n && l[i].cpu < l[j].cpu) })
		parts := make([]string, len(l))
		for i, e := range l {
			parts[i] = strconv.Itoa(e.cpu) + ":" + strconv.Itoa(e.n)
		}
		return strings.Join(parts, ",")
	}
	return f(s.counts[0]), f(s.counts[1])
}
