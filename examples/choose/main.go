// Command choose asks which transport is fastest on this machine for 4 KiB
// request/response messages, then serves HTTP over the winner.
//
// It is the library use of `ipcbench choose` in a program of its own: no
// ipcbench binary is needed, because the calibration's peer process is
// this program started again, and peer.RunIfPeer, called first in main,
// makes that copy serve as the peer.
//
//	go run ./examples/choose -t unix,tcp-localhost,shm-ring
//
// It prints "SPEC ADDRESS" on its first line of standard output (the
// chosen transport and where it listens; any program can then dial with
// all.Dial(ctx, SPEC, ADDRESS)), the answer on standard error, and serves
// GET /hello until standard input closes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ipcbench/ipcbench/bench/choose"
	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
)

func main() {
	peer.RunIfPeer(all.Lookup) // first: in the calibration's peer process this serves and exits

	log.SetFlags(0)
	log.SetPrefix("choose: ")
	trs := flag.String("t", "", "transports to consider, comma-separated (default: every transport)")
	size := flag.Int("s", 4096, "message size in bytes")
	budget := flag.Duration("budget", choose.DefaultBudget, "time the calibration may take")
	sock := flag.String("sock", "", "socket path to listen on when the winner is unix, pipe or shm-* (default: in a fresh directory)")
	flag.Parse()
	ctx := context.Background()

	o := choose.Options{Budget: *budget}
	if *trs != "" {
		o.Transports = strings.Split(*trs, ",")
	}
	start := time.Now()
	ans, err := choose.Measure(ctx, choose.Question{Workload: choose.Pingpong, Size: *size}, o)
	if err != nil {
		log.Fatal(err)
	}
	ans.WriteText(os.Stderr)
	log.Printf("chose %s in %s", ans.Winner, time.Since(start).Round(time.Millisecond))

	// TCP picks its own port; unix listens on a socket path, and pipe and
	// shm-* put there the rendezvous socket through which each dialer gets
	// a channel of its own ("": all.Listen makes a private directory for it).
	addr := ""
	if !strings.HasPrefix(ans.Winner, "tcp-") {
		addr = *sock
	}
	ln, err := all.Listen(ctx, ans.Winner, addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ans.Winner, ln.Endpoint().Address)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s\n", ans.Winner)
	})}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Print(err)
	}
}
