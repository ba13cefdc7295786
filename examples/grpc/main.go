// Command grpcover serves or calls gRPC over any ipcbench transport, as two
// separately started processes that share only a transport spec and an
// address. It lives in a module of its own so that the ipcbench module
// does not depend on gRPC.
//
// The server listens, prints the address to dial on its first line of
// standard output, and serves until standard input closes or it gets
// SIGINT/SIGTERM/SIGHUP:
//
//	go run . -serve -t shm-ring
//
// Without -addr, all.Listen picks the place: a free port for TCP, and for
// unix, pipe, shm-lock and shm-ring a socket in a fresh private directory
// (mode 0700) that closing the listener removes. An -addr
// socket path must be in a directory of this user's that is closed to
// others (mode 0700; made so when missing, as in -addr /tmp/ipcb/s): /tmp
// itself is refused.
//
// The client makes -n unary calls, each with a payload of -size bytes that
// the server checks and answers with a payload the client checks; with
// -reuse=false every call gets a connection of its own:
//
//	go run . -t shm-ring -addr ADDRESS -n 1000 -size 4096
//
// The glue: the server's net.Listener is all.Listen's, the client dials
// with grpc.WithContextDialer and all.Dial. The service is described by
// hand (grpc.ServiceDesc) with the well-known BytesValue message, so no
// code generation is needed.
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
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ipcbench/ipcbench/transports/all"
)

// method is the one RPC: a BytesValue in, a BytesValue out.
const method = "/ipcbench.example.Echo/Echo"

func main() {
	log.SetFlags(0)
	log.SetPrefix("grpcover: ")
	serve := flag.Bool("serve", false, "serve instead of calling")
	spec := flag.String("t", "unix", "transport spec: unix, tcp-localhost, shm-ring[wait=spin], ...")
	addr := flag.String("addr", "", "server: where to listen (when empty: all.Listen's default, a free port or a socket in a fresh private directory); client: the address the server printed")
	n := flag.Int("n", 1000, "client: calls to make")
	size := flag.Int("size", 4096, "client: request and response payload size in bytes")
	reuse := flag.Bool("reuse", true, "client: one connection for every call (false: a new connection per call)")
	flag.Parse()
	var err error
	if *serve {
		err = runServer(*spec, *addr)
	} else {
		err = runClient(*spec, *addr, *n, *size, *reuse)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// payload returns the payload of call i (dir 0) or of its answer (dir 1):
// every byte depends on i, so one call's payload is not another's.
func payload(i, dir, size int) []byte {
	b := make([]byte, size)
	for k := range b {
		b[k] = byte(i*31 + dir*17 + k*7 + k>>8)
	}
	return b
}

// encodeIndex and decodeIndex put the call's number in front of the
// payload.
func encodeIndex(i int, p []byte) []byte {
	return append([]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}, p...)
}

func decodeIndex(b []byte) (int, []byte, error) {
	if len(b) < 4 {
		return 0, nil, errors.New("message shorter than its index")
	}
	return int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3]), b[4:], nil
}

// echo checks a request and answers it.
func echo(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.BytesValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	i, p, err := decodeIndex(in.Value)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if !bytes.Equal(p, payload(i, 0, len(p))) {
		return nil, status.Errorf(codes.InvalidArgument, "call %d: payload of %d bytes does not match", i, len(p))
	}
	return wrapperspb.Bytes(encodeIndex(i, payload(i, 1, len(p)))), nil
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "ipcbench.example.Echo",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Echo", Handler: echo}},
}

// runServer serves until stdin closes or it gets SIGINT, SIGTERM or SIGHUP.
func runServer(spec, addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ln, err := all.Listen(ctx, spec, addr)
	if err != nil {
		return err
	}
	if ln.Endpoint().Address == "" {
		ln.Close()
		return fmt.Errorf("-t %s: its connections are handed to a child process as files, not dialed by address; choose another transport", spec)
	}
	fmt.Println(ln.Endpoint().Address)
	srv := grpc.NewServer()
	srv.RegisterService(&serviceDesc, struct{}{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		srv.Stop()
	}()
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// dial returns a client connection over spec to addr.
func dial(spec, addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///ipcbench",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return all.Dial(ctx, spec, addr)
		}))
}

// runClient makes n calls and checks every answer.
func runClient(spec, addr string, n, size int, reuse bool) error {
	if _, err := all.Resolve(spec); err != nil {
		return err
	}
	ctx := context.Background()
	var shared *grpc.ClientConn
	conns := 0
	for i := 0; i < n; i++ {
		cc := shared
		if cc == nil {
			var err error
			if cc, err = dial(spec, addr); err != nil {
				return err
			}
			conns++
			if reuse {
				shared = cc
				defer cc.Close()
			}
		}
		out := new(wrapperspb.BytesValue)
		err := cc.Invoke(ctx, method, wrapperspb.Bytes(encodeIndex(i, payload(i, 0, size))), out)
		if !reuse {
			cc.Close()
		}
		if err != nil {
			return fmt.Errorf("call %d: %w", i, err)
		}
		j, p, err := decodeIndex(out.Value)
		if err != nil || j != i || !bytes.Equal(p, payload(i, 1, size)) {
			return fmt.Errorf("call %d: answer does not match (index %d, %d bytes, %v)", i, j, len(p), err)
		}
	}
	fmt.Printf("%d calls of %d bytes over %s: every payload checked, %s\n", n, size, spec, connections(int64(conns)))
	return nil
}

// connections words n connections, "1 connection" for one.
func connections(n int64) string {
	if n == 1 {
		return "1 connection"
	}
	return fmt.Sprintf("%d connections", n)
}
