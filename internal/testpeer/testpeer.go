// Package testpeer helps fault tests of the bench and the CLI, whose test
// binaries serve as their own peers: a test scripts how the next peer
// starts go (start, fail before the handshake, hang before it), and finds
// the processes it started, without knowing their pids in advance.
//
// A test binary's TestMain calls Act first when it runs as a peer; a test
// writes a script with Script and names its directory in the peers'
// environment (Env). Only test binaries import this package.
package testpeer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Env names the directory that holds a script, in a peer's environment.
const Env = "IPCBENCH_TEST_PEER_SCRIPT"

// FailMessage is what a peer whose start fails by script writes on stderr
// before it exits with status 1.
const FailMessage = "test peer: failing this start on purpose"

// Action is what one peer start does.
type Action string

// The actions of a script.
const (
	// Start starts the peer as usual.
	Start Action = "start"
	// Fail makes the peer exit with status 1, saying FailMessage, before
	// its handshake.
	Fail Action = "fail"
	// Hang makes the peer sleep before its handshake, until the process
	// that started it gives up on it and kills it.
	Hang Action = "hang"
)

// Script writes actions, in order, into dir, an empty directory: the next
// len(actions) peer starts with Env=dir in their environment take one
// each; later starts go as usual.
func Script(dir string, actions ...Action) error {
	for i, a := range actions {
		name := fmt.Sprintf("%06d-%s", i, a)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Act takes the next action of the script named in the environment, if
// any, and does it: it returns for Start (or no script, or a script used
// up), exits for Fail and sleeps for Hang. Of peers starting at the same
// time, each takes a different action.
func Act() {
	dir := os.Getenv(Env)
	if dir == "" {
		return
	}
	ents, _ := os.ReadDir(dir)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		if os.Remove(filepath.Join(dir, name)) != nil {
			continue // another peer took it
		}
		_, a, _ := strings.Cut(name, "-")
		switch Action(a) {
		case Fail:
			os.Stderr.WriteString(FailMessage + "\n")
			os.Exit(1)
		case Hang:
			time.Sleep(time.Hour)
		}
		return
	}
}

// State returns the state letter of process pid ('R', 'S', 'Z', ...) and
// its parent, or 0 when there is no such process.
func State(pid int) (state byte, ppid int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid
}

// Children returns the live (not zombie) children of process pid, found by
// reading every process's parent in /proc.
func Children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, pp := State(p); pp == pid && s != 'Z' && s != 0 {
			out = append(out, p)
		}
	}
	return out
}
