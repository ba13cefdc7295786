// Package all lists every ipcbench transport, in one explicit, fixed order,
// and resolves the transport specs users write ("shm-ring[wait=spin]") to
// a transport and its checked options. There is no registry: adding a
// transport means adding it to List.
package all

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
	"github.com/ipcbench/ipcbench/transports/pipe"
	"github.com/ipcbench/ipcbench/transports/shmlock"
	"github.com/ipcbench/ipcbench/transports/shmring"
	"github.com/ipcbench/ipcbench/transports/tcplocal"
	"github.com/ipcbench/ipcbench/transports/tcppublic"
	"github.com/ipcbench/ipcbench/transports/tcpveth"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// All is the spec name that stands for every transport of List in
// ResolveList.
const All = "all"

// List returns a fresh slice of every transport in the fixed order
// tcp-localhost, tcp-public, tcp-veth, unix, pipe, shm-lock, shm-ring.
// Callers may modify it.
func List() []transports.Transport {
	return []transports.Transport{
		tcplocal.New(),
		tcppublic.New(),
		tcpveth.New(),
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

// Lookup returns the transport called name. An unknown name gives a
// *transports.SpecError wrapping transports.ErrUnknownTransport that lists
// the valid names. A spec with options ("shm-ring[wait=spin]") is not a
// name: Lookup refuses it with an error wrapping transports.ErrBadSpec that
// points to Resolve, which returns the options too, rather than drop them.
func Lookup(name string) (transports.Transport, error) {
	for _, t := range List() {
		if t.Name() == name {
			return t, nil
		}
	}
	if strings.ContainsAny(name, "[],") {
		if _, err := transports.ParseSpec(name); err != nil {
			return nil, err
		}
		return nil, &transports.SpecError{Spec: name, Problem: "Lookup takes a transport name; use Resolve for a spec with options", Err: transports.ErrBadSpec}
	}
	return nil, unknown(name)
}

// unknown is Lookup's error for a name no transport has.
func unknown(name string) error {
	return &transports.SpecError{
		Spec:    name,
		Problem: fmt.Sprintf("%v (valid: %s)", transports.ErrUnknownTransport, strings.Join(Names(), ", ")),
		Err:     transports.ErrUnknownTransport,
	}
}

// Resolved is a transport spec resolved to its transport, with options the
// transport has checked.
type Resolved struct {
	// Transport is the transport the spec names.
	Transport transports.Transport
	// Spec is the parsed spec; Spec.Options go to Config.Options, and
	// Spec.String() is the canonical label ("shm-ring[wait=spin]").
	Spec transports.Spec
}

// Resolve parses one transport spec as users write it ("unix",
// "shm-ring[wait=spin]", "tcp-localhost[nodelay=false]"), finds its
// transport and checks its options with the transport's own parser
// (transports.OptionChecker) without listening. Every error is a
// *transports.SpecError naming the spec, wrapping transports.ErrBadSpec
// (malformed, or "all", which names no single transport),
// transports.ErrUnknownTransport or transports.ErrBadOption.
func Resolve(spec string) (Resolved, error) {
	sp, err := transports.ParseSpec(spec)
	if err != nil {
		return Resolved{}, err
	}
	if sp.Name == All {
		return Resolved{}, &transports.SpecError{Spec: spec, Problem: `"all" names every transport; one is expected here`, Err: transports.ErrBadSpec}
	}
	return resolve(spec, sp)
}

// resolve finds sp's transport and checks its options; text is the spec
// as given, for errors.
func resolve(text string, sp transports.Spec) (Resolved, error) {
	tr, err := Lookup(sp.Name)
	if err != nil {
		return Resolved{}, unknown(text)
	}
	if oc, ok := tr.(transports.OptionChecker); ok {
		if err := oc.CheckOptions(sp.Options); err != nil {
			return Resolved{}, &transports.SpecError{Spec: text, Problem: err.Error(), Err: err}
		}
	}
	return Resolved{Transport: tr, Spec: sp}, nil
}

// ResolveList resolves a comma-separated list of specs as Resolve does
// ("unix,tcp-localhost[nodelay=false],pipe[pipe_size=1MiB]"), in order;
// "all" (without options) stands for every transport of List. The first
// bad item ends it with a *transports.SpecError naming that item.
//
// Duplicates are kept: "unix,unix" gives unix twice, "all,unix" gives
// every transport and unix again. A caller that needs each variant once
// checks the result (as bench.TransportSpec values) with
// bench.CheckUniqueTransports, as the runner and package bench/choose do.
func ResolveList(list string) ([]Resolved, error) {
	specs, err := transports.ParseSpecList(list)
	if err != nil {
		return nil, err
	}
	var out []Resolved
	for _, sp := range specs {
		if sp.Name == All {
			if len(sp.Options) > 0 {
				return nil, &transports.SpecError{Spec: sp.String(), Problem: `"all" takes no options`, Err: transports.ErrBadSpec}
			}
			for _, t := range List() {
				out = append(out, Resolved{Transport: t, Spec: transports.Spec{Name: t.Name()}})
			}
			continue
		}
		r, err := resolve(sp.String(), sp)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Listen resolves spec (see Resolve) and listens with its options on
// address, whose meaning is the transport's Config.Address, so that any
// process of this user can dial ln.Endpoint().Address. With address "",
// each transport listens in a default place: TCP on an ephemeral port,
// unix in a fresh private directory, and pipe, shm-lock and shm-ring,
// whose own default (a listener for a child that inherits its endpoint)
// cannot be dialed, on a rendezvous socket in a fresh private directory
// too (0700, in os.TempDir(); Close removes it, and one a killed process
// left is removed by a later Listen). Errors are Resolve's, or the
// transport's Listen's (transports.ErrUnavailable when it cannot run
// here, transports.ErrBadEndpoint when it cannot listen on address,
// transports.ErrBadOption for options it refuses by address: shm-*'s
// mapping=file).
func Listen(ctx context.Context, spec, address string) (transports.Listener, error) {
	r, err := Resolve(spec)
	if err != nil {
		return nil, err
	}
	cfg := transports.Config{Address: address, Options: r.Spec.Options}
	rd, ok := r.Transport.(transports.RendezvousDialer)
	if address != "" || !ok || !rd.DialsThroughRendezvous() {
		return r.Transport.Listen(ctx, cfg)
	}
	place, err := rendezvous.Private(dirPrefix, "s")
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", spec, err)
	}
	cfg.Address = place.Path
	ln, err := r.Transport.Listen(ctx, cfg)
	if err != nil {
		place.Release()
		return nil, err
	}
	return &privateListener{Listener: ln, place: place}, nil
}

// dirPrefix starts the name of the private directories of Listen.
const dirPrefix = "ipcbench-all-"

// privateListener is a listener in a private directory of Listen, which
// Close removes.
type privateListener struct {
	transports.Listener
	place rendezvous.Place
	once  sync.Once
}

func (l *privateListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() {
		if rerr := l.place.Release(); rerr != nil && err == nil {
			err = rerr
		}
	})
	return err
}

// Dial resolves spec (see Resolve) and dials address, a listener's
// Endpoint().Address, with the spec's options, which should be the
// listener's. Errors are Resolve's, one wrapping transports.ErrBadEndpoint
// for an empty address, or the transport's Dial's.
//
// A pipe or shm-* listener that a Transport's Listen made with the
// address "" has no address to dial: it hands its channels only to a
// child that inherits them (see transports.Endpoint.AttachTo); Listen
// above gives every transport one.
func Dial(ctx context.Context, spec, address string) (net.Conn, error) {
	r, err := Resolve(spec)
	if err != nil {
		return nil, err
	}
	if address == "" {
		return nil, fmt.Errorf("%w: dial %s: no address (ln.Endpoint().Address of the listener; a pipe or shm-* listener a Transport made with \"\" has none: hand its endpoint to a child with AttachTo)", transports.ErrBadEndpoint, spec)
	}
	return r.Transport.Dial(ctx, transports.Endpoint{Transport: r.Transport.Name(), Address: address, Options: r.Spec.Options})
}
