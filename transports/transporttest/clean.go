package transporttest

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// settle is how long the checks after a case wait for descriptors and
// processes to go away before they call it a leak.
const settle = 3 * time.Second

// runtimeFDs are descriptors the Go runtime opens once, lazily, for its
// network poller; a case may be the first to need them.
var runtimeFDs = []string{"anon_inode:[eventpoll]", "anon_inode:[eventfd]"}

// NoLeaks snapshots the process and registers a cleanup, run after every
// cleanup the test registers later, that fails the test when it left
// behind a file descriptor, a goroutine, a child process (zombies
// included), a shared mapping, or a file in the temporary directory or in
// /dev/shm. The conformance suite calls it for every case; other tests of
// the module (the runner's) call it too.
func NoLeaks(t *testing.T) {
	t.Helper()
	fds := openFDs(t)
	ignore := goleak.IgnoreCurrent()
	kids := children(t)
	tmp := names(os.TempDir(), "")
	shm := names(shmDir, leakMarker)
	maps := mappings(t)
	t.Cleanup(func() {
		// Files are looked at again too: another test binary's
		// shm-lock[mapping=file] has its file in /dev/shm for a moment.
		var fdLeaks, kidLeaks, mapLeaks, tmpLeaks, shmLeaks []string
		for deadline := time.Now().Add(settle); ; time.Sleep(20 * time.Millisecond) {
			fdLeaks = newFDs(fds, openFDs(t))
			kidLeaks = added(kids, children(t))
			mapLeaks = added(maps, mappings(t))
			tmpLeaks = added(tmp, names(os.TempDir(), ""))
			shmLeaks = added(shm, names(shmDir, leakMarker))
			if len(fdLeaks)+len(kidLeaks)+len(mapLeaks)+len(tmpLeaks)+len(shmLeaks) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(mapLeaks) > 0 {
			t.Errorf("shared mappings left mapped: %s", strings.Join(mapLeaks, ", "))
		}
		if len(fdLeaks) > 0 {
			t.Errorf("file descriptors left open: %s", strings.Join(fdLeaks, ", "))
		}
		if len(kidLeaks) > 0 {
			t.Errorf("child processes left behind (running or zombie): %s", strings.Join(describe(kidLeaks), ", "))
		}
		if err := goleak.Find(ignore); err != nil {
			t.Errorf("goroutines left running: %v", err)
		}
		if len(tmpLeaks) > 0 {
			t.Errorf("files left in the temporary directory: %s", strings.Join(tmpLeaks, ", "))
		}
		if len(shmLeaks) > 0 {
			t.Errorf("files left in %s: %s", shmDir, strings.Join(shmLeaks, ", "))
		}
	})
}

// mappings returns the sorted lines of /proc/self/maps that map one of
// ipcbench's shared-memory files (a memfd or a file whose name contains
// leakMarker).
func mappings(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatalf("reading the mappings: %v", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, leakMarker) {
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out
}

// openFDs maps this process's open descriptors to what they refer to.
func openFDs(t *testing.T) map[int]string {
	t.Helper()
	dir := "/proc/self/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing open descriptors: %v", err)
	}
	out := make(map[int]string, len(ents))
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile (the directory's own descriptor)
		}
		out[fd] = target
	}
	return out
}

// newFDs lists descriptors in after that were not open, or referred to
// something else, in before; the runtime's poller descriptors and the
// listing's own descriptor are not counted.
func newFDs(before, after map[int]string) []string {
	var out []string
	for _, fd := range slices.Sorted(maps.Keys(after)) {
		target := after[fd]
		if before[fd] == target || slices.Contains(runtimeFDs, target) || strings.HasSuffix(target, "/fd") && strings.HasPrefix(target, "/proc/") {
			continue
		}
		out = append(out, fmt.Sprintf("%d -> %s", fd, target))
	}
	return out
}

// children returns the sorted pids of this process's children.
func children(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited
		}
		out = append(out, strings.Fields(string(b))...)
	}
	slices.Sort(out)
	return out
}

// describe adds each process's state and command to its pid.
func describe(pids []string) []string {
	out := make([]string, len(pids))
	for i, pid := range pids {
		out[i] = pid
		if b, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
			out[i] = strings.TrimSpace(string(b[:min(len(b), 60)]))
		}
	}
	return out
}
