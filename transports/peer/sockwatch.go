package peer

import (
	"context"
	"log"
	"net"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
)

// socketWatchEvery is how often Serve looks whether the socket files its
// clients reach it by are still its own (watchSockets).
var socketWatchEvery = 2 * time.Second

// socketFile is a socket file a listener is bound to, by name and by
// identity: the name may come to hold another file.
type socketFile struct {
	path     string
	dev, ino uint64
	control  bool // the control socket (ServeOptions.Control)
	gone     bool // logged as removed or replaced
}

// boundSocket returns the socket file l is reached by, when it listens on
// one: the address of its endpoint (a rendezvous socket, for pipe and
// shm-*), or its own address for a unix socket; ok is false for a
// listener reached otherwise (a tcp port) or a path that is not a socket
// file now.
func boundSocket(l net.Listener) (sf socketFile, ok bool) {
	switch {
	case l == nil:
		return sf, false
	case l.Addr().Network() == "unix":
		sf.path = l.Addr().String()
	default:
		e, isEndpoint := l.(interface{ Endpoint() transports.Endpoint })
		if !isEndpoint {
			return sf, false
		}
		sf.path = e.Endpoint().Address
	}
	if sf.path == "" {
		return sf, false
	}
	dev, ino, ok := rendezvous.SocketID(sf.path)
	sf.dev, sf.ino = dev, ino
	return sf, ok
}

// watchSockets looks every socketWatchEvery, until ctx ends, whether each
// of files is still the socket file at its path, and logs once for each
// that is not: removed (by hand, or by a cleaner of old files in /tmp) or
// replaced by another file, it no longer leads new clients to this
// server, which otherwise would go on, unreachable, without a word.
func watchSockets(ctx context.Context, files []socketFile, logger *log.Logger) {
	if len(files) == 0 {
		return
	}
	t := time.NewTicker(socketWatchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := range files {
			f := &files[i]
			if f.gone {
				continue
			}
			if dev, ino, ok := rendezvous.SocketID(f.path); ok && dev == f.dev && ino == f.ino {
				continue
			}
			if ctx.Err() != nil {
				return // the stop may have removed it
			}
			f.gone = true
			if f.control {
				logger.Printf("the control socket %s was removed or replaced by another file: new ipcbench run sessions cannot reach this server, sessions already open and echo clients go on; stop the server and start it again", f.path)
			} else {
				logger.Printf("the socket %s was removed or replaced by another file: new clients cannot reach this server there, sessions already open go on; stop the server and start it again", f.path)
			}
		}
	}
}
