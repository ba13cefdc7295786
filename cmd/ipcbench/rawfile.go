package main

import (
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
)

// newHeader returns the header every raw file of command name starts with:
// the time, this tool's version, the machine's facts and the command line.
// The caller adds where sockets ran and the options.
func newHeader(name string, args []string) bench.Header {
	return bench.Header{
		Time:    time.Now().UTC(),
		Tool:    "ipcbench " + version(),
		Machine: sysinfo.Collect(),
		Command: append([]string{"ipcbench", name}, args...),
	}
}
