// Command ipcbench measures and ranks local inter-process communication:
// TCP on localhost and on a non-loopback address, Unix domain sockets,
// pipes and shared memory, between two real processes, with the same
// workloads over each. Run `ipcbench help` for the commands.
package main

import "os"

func main() { os.Exit(run(signalContext(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
