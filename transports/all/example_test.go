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

// Choosing a transport by name and moving bytes over it. In a real program
// the Dial happens in the other process: the parent hands it the endpoint
// with ep.AttachTo(cmd) before cmd.Start, and the child gets it back, files
// and all, with transports.InheritedEndpoint; here both ends are in one
// process to keep it short.
func Example() {
	ctx := context.Background()
	tr, err := all.Lookup("unix")
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tr.Listen(ctx, transports.Config{})
	if err != nil {
		log.Fatal(err) // errors.Is(err, transports.ErrUnavailable): cannot run here
	}
	defer ln.Close()

	go func() {
		c, err := tr.Dial(ctx, ln.Endpoint())
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("hello over " + tr.Name()))
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
	// Output: hello over unix
}

// Listening and dialing by spec and address, the strings a user types.
// The two ends would normally be two processes started separately; the
// client needs only the spec and the address.
func ExampleDial() {
	ctx := context.Background()
	ln, err := all.Listen(ctx, "unix[io=raw]", "") // "": in os.TempDir()
	if err != nil {
		log.Fatal(err)
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
