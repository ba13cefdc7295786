package peer_test

import (
	"fmt"

	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// A program that imports ipcbench serves as its own peer process: the first
// line of its main is RunIfPeer. Started as a peer (by a bench.Runner whose
// Options.Peer.Path is this program), it serves the bench process and exits
// there; started any other way, as here, RunIfPeer returns and the program
// goes on.
func ExampleRunIfPeer() {
	peer.RunIfPeer(all.Lookup)
	fmt.Println("not started as a peer: the program goes on")
	// Output: not started as a peer: the program goes on
}
