package all_test

import (
	"context"
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
