package all

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
)

var wantNames = []string{"tcp-localhost", "tcp-public", "tcp-veth", "unix", "pipe", "shm-lock", "shm-ring"}

func TestList(t *testing.T) {
	if got := Names(); !slices.Equal(got, wantNames) {
		t.Fatalf("Names() = %q, want %q", got, wantNames)
	}
	l := List()
	l[0] = nil
	if List()[0] == nil {
		t.Fatal("List returns a shared slice")
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name    string
		wantErr bool
	}{
		{"tcp-localhost", false},
		{"tcp-public", false},
		{"tcp-veth", false},
		{"unix", false},
		{"pipe", false},
		{"shm-lock", false},
		{"", true},
		{"TCP-LOCALHOST", true},
		{"tcp", true},
		{"shm", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := Lookup(tt.name)
			if tt.wantErr {
				if !errors.Is(err, transports.ErrUnknownTransport) {
					t.Fatalf("Lookup(%q) = %v, %v; want ErrUnknownTransport", tt.name, tr, err)
				}
				for _, n := range wantNames {
					if !strings.Contains(err.Error(), n) {
						t.Fatalf("error %q does not list %q", err, n)
					}
				}
				return
			}
			if err != nil || tr == nil || tr.Name() != tt.name {
				t.Fatalf("Lookup(%q) = %v, %v", tt.name, tr, err)
			}
		})
	}
}

func TestLookupRefusesSpecWithOptions(t *testing.T) {
	_, err := Lookup("shm-ring[wait=spin]")
	if !errors.Is(err, transports.ErrBadSpec) || !strings.Contains(err.Error(), "Resolve") {
		t.Fatalf("Lookup of a spec with options: %v; want ErrBadSpec pointing to Resolve", err)
	}
	if _, err := Lookup("unix[a"); !errors.Is(err, transports.ErrBadSpec) {
		t.Fatalf("Lookup of a malformed spec: %v; want ErrBadSpec", err)
	}
}

// TestEveryTransportChecksOptions: a transport that cannot check its
// options lets a bad variant through to the middle of a run.
func TestEveryTransportChecksOptions(t *testing.T) {
	for _, tr := range List() {
		oc, ok := tr.(transports.OptionChecker)
		if !ok {
			t.Errorf("%s does not implement transports.OptionChecker", tr.Name())
			continue
		}
		if err := oc.CheckOptions(nil); err != nil {
			t.Errorf("%s: CheckOptions(nil) = %v", tr.Name(), err)
		}
		if err := oc.CheckOptions(map[string]string{"no-such-option": "1"}); !errors.Is(err, transports.ErrBadOption) {
			t.Errorf("%s: CheckOptions of an unknown key = %v, want ErrBadOption", tr.Name(), err)
		}
	}
}

// TestEveryTransportStatesMemory: every transport states its memory per
// connection (the conformance case memory checks the figures), with
// something in every statement a connection cannot do without, and more
// for a larger Config.BufferSize.
func TestEveryTransportStatesMemory(t *testing.T) {
	for _, tr := range List() {
		mr, ok := tr.(transports.MemoryReporter)
		if !ok {
			t.Errorf("%s does not implement transports.MemoryReporter", tr.Name())
			continue
		}
		small := mr.MemoryPerConn(transports.Config{BufferSize: 64 << 10})
		large := mr.MemoryPerConn(transports.Config{BufferSize: 1 << 20})
		if small.Descriptors < 1 || small.HeapBytes <= 0 || small.SharedBytes+small.KernelBytes <= 0 {
			t.Errorf("%s: MemoryPerConn = %+v; want descriptors, heap, and a mapping or kernel buffers", tr.Name(), small)
		}
		if large.SharedBytes+large.KernelBytes <= small.SharedBytes+small.KernelBytes {
			t.Errorf("%s: MemoryPerConn with 1 MiB buffers (%+v) is not above that with 64 KiB (%+v)", tr.Name(), large, small)
		}
	}
}

func TestResolve(t *testing.T) {
	good := []struct {
		spec, label string
	}{
		{"unix", "unix"},
		{"shm-ring[wait=spin]", "shm-ring[wait=spin]"},
		{"shm-ring[spin_ns=500, wait=adaptive]", "shm-ring[spin_ns=500,wait=adaptive]"},
		{"shm-lock[mapping=file]", "shm-lock[mapping=file]"},
		{"tcp-localhost[nodelay=false]", "tcp-localhost[nodelay=false]"},
		{"tcp-public[sndbuf=256k,rcvbuf=1MiB]", "tcp-public[rcvbuf=1MiB,sndbuf=256k]"},
		{"unix[io=raw]", "unix[io=raw]"},
		{"pipe[pipe_size=1MiB,io=netpoll]", "pipe[io=netpoll,pipe_size=1MiB]"},
	}
	for _, tt := range good {
		r, err := Resolve(tt.spec)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tt.spec, err)
			continue
		}
		if r.Transport.Name() != r.Spec.Name || r.Spec.String() != tt.label {
			t.Errorf("Resolve(%q) = %s, %s; want label %s", tt.spec, r.Transport.Name(), r.Spec, tt.label)
		}
	}

	bad := []struct {
		spec   string
		is     error
		naming string // in the message
	}{
		{"unix[io=foo]", transports.ErrBadOption, `io="foo"`},
		{"unix[sndbuf=-1]", transports.ErrBadOption, `sndbuf="-1"`},
		{"shm-ring[spin_ns=abc]", transports.ErrBadOption, `spin_ns="abc"`},
		{"pipe[pipe_size=1TiB]", transports.ErrBadOption, `pipe_size="1TiB"`},
		{"unix[nodelay=false]", transports.ErrBadOption, "unknown option nodelay"},
		{"tcp-localhost[nodelay=maybe]", transports.ErrBadOption, `nodelay="maybe"`},
		{"tcp-public[rcvbuf=3GiB]", transports.ErrBadOption, `rcvbuf="3GiB"`},
		{"shm-lock[zerocopy=off]", transports.ErrBadOption, "unknown option zerocopy"},
		{"shm-lock[mapping=disk]", transports.ErrBadOption, `mapping="disk"`},
		{"shm-ring[wait=sometimes]", transports.ErrBadOption, `wait="sometimes"`},
		{"shm-ring[zerocopy=maybe]", transports.ErrBadOption, `zerocopy="maybe"`},
		{"pipe[io=raw,sndbuf=1k]", transports.ErrBadOption, "unknown option sndbuf"},
		{"carrier-pigeon", transports.ErrUnknownTransport, "carrier-pigeon"},
		{"carrier-pigeon[speed=1]", transports.ErrUnknownTransport, "tcp-localhost"},
		{"all", transports.ErrBadSpec, "all"},
		{"unix[", transports.ErrBadSpec, `missing "]"`},
		{"", transports.ErrBadSpec, "no transport name"},
	}
	for _, tt := range bad {
		_, err := Resolve(tt.spec)
		var se *transports.SpecError
		if !errors.Is(err, tt.is) || !errors.As(err, &se) {
			t.Errorf("Resolve(%q) = %v; want a *SpecError wrapping %v", tt.spec, err, tt.is)
			continue
		}
		if se.Spec != tt.spec || !strings.Contains(err.Error(), tt.naming) {
			t.Errorf("Resolve(%q): %v; want it to name the spec and %q", tt.spec, err, tt.naming)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Resolve(%q): message spans lines: %q", tt.spec, err)
		}
	}
}

func TestResolveList(t *testing.T) {
	rs, err := ResolveList("unix, all ,shm-ring[wait=futex]")
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, r := range rs {
		labels = append(labels, r.Spec.String())
	}
	want := append(append([]string{"unix"}, wantNames...), "shm-ring[wait=futex]")
	if !slices.Equal(labels, want) {
		t.Errorf("labels %q, want %q", labels, want)
	}
	// Duplicates are kept, as documented: unix then comes twice.
	if rs, err := ResolveList("unix,unix"); err != nil || len(rs) != 2 {
		t.Errorf("ResolveList(unix,unix) = %d items, %v; want both kept", len(rs), err)
	}
	for _, tt := range []struct {
		list, item string
		is         error
	}{
		{"unix,pipe[pipe_size=1TiB]", "pipe[pipe_size=1TiB]", transports.ErrBadOption},
		{"all[a=1]", "all[a=1]", transports.ErrBadSpec},
		{"unix,tcp", "tcp", transports.ErrUnknownTransport},
		{",", ",", transports.ErrBadSpec},
	} {
		_, err := ResolveList(tt.list)
		var se *transports.SpecError
		if !errors.Is(err, tt.is) || !errors.As(err, &se) || se.Spec != tt.item {
			t.Errorf("ResolveList(%q) = %v; want a *SpecError for %q wrapping %v", tt.list, err, tt.item, tt.is)
		}
	}
}

// TestDialContextEnded: a Dial by address whose context has already
// ended fails with the context's error on every transport, and with no
// sentinel that blames the address or the peer.
func TestDialContextEnded(t *testing.T) {
	dir, err := os.MkdirTemp("", "a") // short: t.TempDir's names may not fit in sun_path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, name := range []string{"tcp-localhost", "unix", "pipe", "shm-lock", "shm-ring"} {
		t.Run(name, func(t *testing.T) {
			address := ""
			if name != "tcp-localhost" {
				address = filepath.Join(dir, name, "s")
			}
			ln, err := Listen(t.Context(), name, address)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			c, err := Dial(ctx, name, ln.Endpoint().Address)
			if err == nil {
				c.Close()
				t.Fatal("Dial with a canceled context succeeded")
			}
			if !errors.Is(err, context.Canceled) || errors.Is(err, transports.ErrBadEndpoint) || errors.Is(err, transports.ErrPeerGone) {
				t.Fatalf("Dial with a canceled context: %v; want context.Canceled, neither ErrBadEndpoint nor ErrPeerGone", err)
			}
		})
	}
}

// TestListenDial connects by spec and address, end to end, over every
// transport (pipe and shm-* through their rendezvous socket), and checks
// that the spec's options reach both ends.
func TestListenDial(t *testing.T) {
	// A short private directory: t.TempDir's names may not fit in sun_path.
	dir, err := os.MkdirTemp("", "a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := func(name string) string { return filepath.Join(dir, name, "s") }
	for _, tt := range []struct {
		spec, address string
		key, want     string // an effective option both ends report
	}{
		{"tcp-localhost[nodelay=false]", "", "nodelay", "false"},
		{"tcp-localhost", "", "nodelay", "true"},
		{"unix[io=raw]", path("unix"), "io", "raw"},
		{"unix", "", "io", "netpoll"},
		{"pipe[io=raw]", path("pipe"), "io", "raw"},
		{"shm-lock", path("lock"), "lock", "futex-mutex"},
		{"shm-ring[wait=spin]", path("ring"), "wait", "spin"},
		// "": a private directory of Listen's, for pipe and shm-* too.
		{"pipe", "", "io", "netpoll"},
		{"shm-lock", "", "lock", "futex-mutex"},
		{"shm-ring", "", "wait", "adaptive"},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ln, err := Listen(ctx, tt.spec, tt.address)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			addr := ln.Endpoint().Address
			if tt.address != "" && !strings.HasPrefix(addr, tt.address) {
				t.Errorf("listening at %s, not in %s", addr, tt.address)
			}
			if addr == "" {
				t.Fatal("the listener has no address to dial")
			}
			if tt.address == "" && !strings.HasPrefix(tt.spec, "tcp") {
				dir := filepath.Dir(addr)
				if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
					t.Errorf("the default place %s: %v, %v; want a 0700 directory", dir, st, err)
				}
				defer func() {
					ln.Close()
					if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("after Close, the default place %s: %v; want it removed", dir, err)
					}
				}()
			}
			done := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					done <- err
					return
				}
				defer c.Close()
				if got := effective(c, tt.key); got != tt.want {
					t.Errorf("accepted side: %s=%q, want %q", tt.key, got, tt.want)
				}
				_, err = io.Copy(c, c)
				done <- err
			}()
			c, err := Dial(ctx, tt.spec, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := effective(c, tt.key); got != tt.want {
				t.Errorf("dialing side: %s=%q, want %q", tt.key, got, tt.want)
			}
			msg := []byte("hello over " + tt.spec)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if err := c.(transports.CloseWriter).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil || string(got) != string(msg) {
				t.Fatalf("echo %q, %v; want %q", got, err, msg)
			}
			if err := <-done; err != nil {
				t.Fatalf("accepted side: %v", err)
			}
		})
	}
}

// effective returns option key as c reports it.
func effective(c any, key string) string {
	r, ok := c.(transports.OptionReporter)
	if !ok {
		return "(no OptionReporter)"
	}
	return r.EffectiveOptions()[key]
}

func TestListenDialBadSpec(t *testing.T) {
	ctx := context.Background()
	if ln, err := Listen(ctx, "unix[sndbuf=-1]", ""); !errors.Is(err, transports.ErrBadOption) {
		if ln != nil {
			ln.Close()
		}
		t.Errorf("Listen with a bad option: %v, want ErrBadOption", err)
	}
	if c, err := Dial(ctx, "tcp-localhost[nodelay=perhaps]", "127.0.0.1:1"); !errors.Is(err, transports.ErrBadOption) {
		if c != nil {
			c.Close()
		}
		t.Errorf("Dial with a bad option: %v, want ErrBadOption", err)
	}
	// An empty address (a pipe or shm-* listener a Transport made with ""
	// has none): dialing "" is refused by name rather than failing on a
	// missing file.
	for _, spec := range []string{"pipe", "shm-ring", "unix"} {
		if c, err := Dial(ctx, spec, ""); !errors.Is(err, transports.ErrBadEndpoint) || !strings.Contains(err.Error(), "no address") {
			if c != nil {
				c.Close()
			}
			t.Errorf("Dial %s with no address: %v, want ErrBadEndpoint saying there is none", spec, err)
		}
	}
	if c, err := Dial(ctx, "all", "127.0.0.1:1"); !errors.Is(err, transports.ErrBadSpec) {
		if c != nil {
			c.Close()
		}
		t.Errorf("Dial all: %v, want ErrBadSpec", err)
	}
}

// TestMeasurementOnly: shm-ring marks zerocopy=off measurement-only, and
// nothing else of any transport's default variant is marked.
func TestMeasurementOnly(t *testing.T) {
	for _, tr := range List() {
		if got := transports.MeasurementOnlyOption(tr, nil); got != "" {
			t.Errorf("%s default variant marked measurement-only: %q", tr.Name(), got)
		}
	}
	r, err := Resolve("shm-ring[wait=spin,zerocopy=off]")
	if err != nil {
		t.Fatal(err)
	}
	if got := transports.MeasurementOnlyOption(r.Transport, r.Spec.Options); got != "zerocopy=off" {
		t.Errorf("shm-ring[wait=spin,zerocopy=off]: MeasurementOnlyOption = %q, want zerocopy=off", got)
	}
	for _, spec := range []string{"shm-ring[zerocopy=on]", "shm-lock", "unix"} {
		r, err := Resolve(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := transports.MeasurementOnlyOption(r.Transport, r.Spec.Options); got != "" {
			t.Errorf("%s: MeasurementOnlyOption = %q, want none", spec, got)
		}
	}
}

// TestListenerOnly: shm-lock's and shm-ring's mapping and pipe's
// pipe_size are marked listener-only, whatever their value, and no option
// that each side applies for itself is.
func TestListenerOnly(t *testing.T) {
	for _, tt := range []struct{ spec, want string }{
		{"shm-ring[wait=spin,mapping=file]", "mapping=file"},
		{"shm-lock[mapping=memfd]", "mapping=memfd"},
		{"pipe[io=raw,pipe_size=64k]", "pipe_size=64k"},
		{"shm-ring[wait=spin,spin_ns=100,zerocopy=off]", ""},
		{"pipe[io=raw]", ""},
		{"unix[sndbuf=64k,rcvbuf=64k,io=raw]", ""},
		{"tcp-localhost[nodelay=false]", ""},
	} {
		r, err := Resolve(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := transports.ListenerOnlyOption(r.Transport, r.Spec.Options); got != tt.want {
			t.Errorf("%s: ListenerOnlyOption = %q, want %q", tt.spec, got, tt.want)
		}
	}
}

// TestEveryTransportRefusesHugeBuffer: a Config.BufferSize (or an
// endpoint's) over transports.MaxBufferSize is refused with ErrBadOption
// by Listen and Dial of every transport, before anything is made: the
// kernel would take it truncated to a C int.
func TestEveryTransportRefusesHugeBuffer(t *testing.T) {
	// A variable, so that int(hugeSize) compiles where an int cannot hold
	// it (32-bit): there no BufferSize exceeds MaxBufferSize at all.
	hugeSize := int64(transports.MaxBufferSize) + 1
	if hugeSize > math.MaxInt {
		t.Skipf("BufferSize is an int: none exceeds MaxBufferSize %d on a %d-bit platform", transports.MaxBufferSize, strconv.IntSize)
	}
	huge := int(hugeSize)
	for _, tr := range List() {
		ln, err := tr.Listen(t.Context(), transports.Config{BufferSize: huge})
		if ln != nil {
			ln.Close()
		}
		if !errors.Is(err, transports.ErrBadOption) || !strings.HasPrefix(err.Error(), tr.Name()+": buffer size ") {
			t.Errorf("%s: Listen with BufferSize %d: %v; want ErrBadOption naming the transport and the buffer size", tr.Name(), huge, err)
		}
		ep := transports.Endpoint{Transport: tr.Name(), Address: "/nonexistent/ipcbench-test", BufferSize: huge}
		if tr.Name() == "tcp-localhost" {
			ep.Address = "127.0.0.1:1"
		}
		c, err := tr.Dial(t.Context(), ep)
		if c != nil {
			c.Close()
		}
		if !errors.Is(err, transports.ErrBadOption) {
			t.Errorf("%s: Dial with BufferSize %d: %v; want ErrBadOption", tr.Name(), huge, err)
		}
	}
}

// TestEveryTransportDescribesItself: every transport has a one-line
// description (transports.Describer) that names every option it takes, as
// its CheckOptions lists them.
func TestEveryTransportDescribesItself(t *testing.T) {
	for _, tr := range List() {
		d := transports.Describe(tr)
		if d == "" || strings.Contains(d, "\n") {
			t.Errorf("%s: description %q, want one line", tr.Name(), d)
			continue
		}
		var oe *transports.OptionError
		if !errors.As(tr.(transports.OptionChecker).CheckOptions(map[string]string{"no-such-option": "1"}), &oe) {
			t.Fatalf("%s: CheckOptions of an unknown key is no *transports.OptionError", tr.Name())
		}
		if strings.Contains(d, "options as tcp-localhost") {
			continue // the TCP transports share their options
		}
		for _, k := range strings.Split(oe.Known, ", ") {
			if !strings.Contains(d, k) {
				t.Errorf("%s: description %q does not name option %s", tr.Name(), d, k)
			}
		}
	}
}
