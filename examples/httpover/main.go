// Command httpover serves or requests net/http over any ipcbench transport,
// as two separately started processes that share only a transport spec and
// an address.
//
// The server listens, prints the address to dial on its first line of
// standard output, and serves until standard input closes or it gets
// SIGINT/SIGTERM/SIGHUP:
//
//	httpover -serve -t unix
//	httpover -serve -t pipe
//	httpover -serve -t 'shm-ring[wait=spin]' -addr /tmp/ipcb/s
//
// Without -addr, all.Listen picks the place: a free port for TCP, and for
// unix, pipe, shm-lock and shm-ring a socket in a fresh private directory
// (mode 0700) that closing the listener removes. An -addr
// socket path must be in a directory of this user's that is closed to
// others (mode 0700; made so when missing, as /tmp/ipcb above): /tmp
// itself is refused. Quote a spec with brackets, which some shells
// (zsh) would expand.
//
// The client sends -n POST requests to that address, each with a body of
// -size bytes that the server checks and answers with a body the client
// checks, with keep-alive on or off:
//
//	httpover -t unix -addr ADDRESS -n 1000 -size 4096 -keepalive=false
//
// Every body is derived from the request's number, so a byte lost or
// changed in either direction fails the request. The glue is two lines:
// all.Listen gives the server its net.Listener, and the client's
// http.Transport dials with all.Dial.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/ipcbench/ipcbench/transports/all"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("httpover: ")
	serve := flag.Bool("serve", false, "serve instead of requesting")
	spec := flag.String("t", "unix", "transport spec: unix, tcp-localhost, shm-ring[wait=spin], ...")
	addr := flag.String("addr", "", "server: where to listen (when empty: all.Listen's default, a free port or a socket in a fresh private directory); client: the address the server printed")
	n := flag.Int("n", 1000, "client: requests to send")
	size := flag.Int("size", 4096, "client: request and response body size in bytes")
	keepAlive := flag.Bool("keepalive", true, "client: reuse connections (false: one connection per request)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	var err error
	if *serve {
		err = runServer(ctx, *spec, *addr)
	} else {
		err = runClient(ctx, *spec, *addr, *n, *size, *keepAlive)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// runServer serves until stdin closes or ctx ends.
func runServer(ctx context.Context, spec, addr string) error {
	ln, err := all.Listen(ctx, spec, addr)
	if err != nil {
		return err
	}
	if ln.Endpoint().Address == "" {
		ln.Close()
		return fmt.Errorf("-t %s: its connections are handed to a child process as files, not dialed by address; choose another transport", spec)
	}
	fmt.Println(ln.Endpoint().Address)
	srv := &http.Server{Handler: http.HandlerFunc(echo)}
	go func() {
		io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
		srv.Close()
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// body returns the body of request i (dir 0) or of its response (dir 1).
func body(i, dir, size int) []byte {
	b := make([]byte, size)
	for k := range b {
		b[k] = byte(i*31 + dir*17 + k*7 + k>>8)
	}
	return b
}

// echo checks the request body of request ?i=N and answers with the
// response body of N.
func echo(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(r.URL.Query().Get("i"))
	if err != nil {
		http.Error(w, "bad i", http.StatusBadRequest)
		return
	}
	got, err := io.ReadAll(r.Body)
	if err != nil || !bytes.Equal(got, body(i, 0, len(got))) || int64(len(got)) != r.ContentLength {
		http.Error(w, fmt.Sprintf("request %d: body of %d bytes does not match (%v)", i, len(got), err), http.StatusBadRequest)
		return
	}
	w.Write(body(i, 1, len(got)))
}

// runClient sends n requests and checks every response.
func runClient(ctx context.Context, spec, addr string, n, size int, keepAlive bool) error {
	if _, err := all.Resolve(spec); err != nil {
		return err
	}
	var dials atomic.Int64
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			return all.Dial(ctx, spec, addr)
		},
		DisableKeepAlives: !keepAlive,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := 0; i < n; i++ {
		// The host is a placeholder: DialContext decides where to go.
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://server/echo?i="+strconv.Itoa(i), bytes.NewReader(body(i, 0, size)))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("request %d: reading the response: %w", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("request %d: %s: %s", i, resp.Status, bytes.TrimSpace(got))
		}
		if !bytes.Equal(got, body(i, 1, size)) {
			return fmt.Errorf("request %d: response body of %d bytes does not match", i, len(got))
		}
	}
	fmt.Printf("%d requests of %d bytes over %s: every body checked, %s\n", n, size, spec, connections(dials.Load()))
	return nil
}

// connections words n connections, "1 connection" for one.
func connections(n int64) string {
	if n == 1 {
		return "1 connection"
	}
	return fmt.Sprintf("%d connections", n)
}
