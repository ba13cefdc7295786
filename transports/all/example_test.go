package all_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
)

// Listening and dialing by spec and address, the strings a user types.
// The two ends would normally be two processes started separately; the
// client needs only the spec and the address. (Below all.Listen,
// Transport.Listen returns an Endpoint that a parent hands to its child
// with ep.AttachTo(cmd), files and all, and the child gets back with
// transports.InheritedEndpoint for Transport.Dial.)
func Example() {
	ctx := context.Background()
	ln, err := all.Listen(ctx, "unix[io=raw]", "") // "": in os.TempDir()
	if err != nil {
		log.Fatal(err) // errors.Is(err, transports.ErrUnavailable): cannot run here
	}
	defer ln.Close()
	addr := ln.Endpoint().Address // the socket path to hand to clients

	go func() {
		c, err := all.Dial(ctx, "unix[io=raw]", addr)
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("hello by address"))
	}()

	c, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	msg, err := io.ReadAll(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(msg))
	// Output: hello by address
}

// A spec that a transport refuses is an error before anything listens.
func ExampleResolve() {
	_, err := all.Resolve("unix[nodelay=false]")
	fmt.Println(errors.Is(err, transports.ErrBadOption))
	fmt.Println(err)
	// Output:
	// true
	// transport spec "unix[nodelay=false]": unix: unknown option nodelay (known: sndbuf, rcvbuf, io)
}
