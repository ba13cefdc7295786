// Package all lists every ipcbench transport, in one explicit, fixed order.
// There is no registry: adding a transport means adding it to List.
package all

import (
	"fmt"
	"strings"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/pipe"
	"github.com/ipcbench/ipcbench/transports/shmlock"
	"github.com/ipcbench/ipcbench/transports/shmring"
	"github.com/ipcbench/ipcbench/transports/tcplocal"
	"github.com/ipcbench/ipcbench/transports/tcppublic"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// List returns a fresh slice of every transport in the fixed order
// tcp-localhost, tcp-public, unix, pipe, shm-lock, shm-ring. Callers may modify it.
func List() []transports.Transport {
	return []transports.Transport{
		tcplocal.New(),
		tcppublic.New(),
		unix.New(),
		pipe.New(),
		shmlock.New(),
		shmring.New(),
	}
}

// Names returns the names of List's transports, in the same order.
func Names() []string {
	l := List()
	names := make([]string, len(l))
	for i, t := range l {
		names[i] = t.Name()
	}
	return names
}

// Lookup returns the transport called name. An unknown name gives an error
// wrapping transports.ErrUnknownTransport that lists the valid names.
func Lookup(name string) (transports.Transport, error) {
	for _, t := range List() {
		if t.Name() == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w %q (valid: %s)", transports.ErrUnknownTransport, name, strings.Join(Names(), ", "))
}
