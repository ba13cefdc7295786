package bench

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
)

func TestTransportSpecLabel(t *testing.T) {
	tr, err := all.Lookup("shm-ring")
	if err != nil {
		t.Fatal(err)
	}
	s := TransportSpec{Transport: tr, Options: map[string]string{"wait": "spin", "spin_ns": "0"}}
	if got, want := s.Label(), "shm-ring[spin_ns=0,wait=spin]"; got != want {
		t.Errorf("Label() = %q, want %q", got, want)
	}
	if got, want := s.Variant(), "spin_ns=0,wait=spin"; got != want {
		t.Errorf("Variant() = %q, want %q", got, want)
	}
	if got := (TransportSpec{Transport: tr}).Label(); got != "shm-ring" {
		t.Errorf("default variant's Label() = %q", got)
	}
}

// TestNewRunnerChecksTransportOptions: a variant a transport does not
// accept is refused before anything runs, as are a negative case timeout
// and a spec without a transport.
func TestNewRunnerChecksTransportOptions(t *testing.T) {
	base := testOptions(t)
	unix, err := all.Lookup("unix")
	if err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Options){
		"bad value": func(o *Options) {
			o.Transports = []TransportSpec{{Transport: unix, Options: map[string]string{"io": "foo"}}}
		},
		"unknown key": func(o *Options) {
			o.Transports = []TransportSpec{{Transport: unix, Options: map[string]string{"nodelay": "false"}}}
		},
		"no transport":     func(o *Options) { o.Transports = []TransportSpec{{}} },
		"unknown model":    func(o *Options) { o.PeerModels = []string{"fork"} },
		"empty model":      func(o *Options) { o.PeerModels = []string{""} },
		"spec model":       func(o *Options) { o.Transports = []TransportSpec{{Transport: unix, PeerModel: "fork"}} },
		"negative timeout": func(o *Options) { o.CaseTimeout = -time.Second },
	} {
		o := base
		mod(&o)
		_, err := NewRunner(o)
		if !errors.Is(err, ErrBadOptions) {
			t.Errorf("%s: err = %v, want ErrBadOptions", name, err)
		}
		if name == "bad value" && !errors.Is(err, transports.ErrBadOption) {
			t.Errorf("%s: err = %v, want transports.ErrBadOption too", name, err)
		}
	}
}

// TestPeerModelVariants: -peer-model plans every transport once per model,
// and every model but the default names a variant.
func TestPeerModelVariants(t *testing.T) {
	unix, err := all.Lookup("unix")
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.Transports = []TransportSpec{{Transport: unix, Options: map[string]string{"io": "raw"}}}
	o.PeerModels = []string{"goroutine", "poll"}
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, tr := range r.opts.Transports {
		labels = append(labels, tr.Label()+" "+tr.Variant()+" "+tr.Model())
	}
	want := []string{"unix[io=raw] io=raw goroutine", "unix[io=raw,model=poll] io=raw,model=poll poll"}
	if !slices.Equal(labels, want) {
		t.Fatalf("transports %q, want %q", labels, want)
	}
	if _, ok := o.Transports[0].Options[ModelKey]; ok {
		t.Fatal("the model leaked into the transport's options")
	}
}
