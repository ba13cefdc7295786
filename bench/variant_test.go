package bench

import (
	"errors"
	"slices"
	"strings"
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
// accept is refused before anything runs, as are a negative case timeout,
// a spec without a transport and any value of a list given twice.
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
		// A value given twice would plan its cases twice.
		"transport twice": func(o *Options) { o.Transports = []TransportSpec{{Transport: unix}, {Transport: unix}} },
		"variant, with the models, twice": func(o *Options) {
			o.Transports = []TransportSpec{{Transport: unix}, {Transport: unix, PeerModel: "thread"}}
			o.PeerModels = []string{"thread"}
		},
		// A default spelled out is the default variant.
		"default spelled out, twice": func(o *Options) {
			o.Transports = []TransportSpec{{Transport: unix}, {Transport: unix, Options: map[string]string{"io": "netpoll"}}}
		},
		"model twice":       func(o *Options) { o.PeerModels = []string{"thread", "thread"} },
		"source twice":      func(o *Options) { o.PeerSources = []string{SourceAddress, SourceAddress} },
		"workload twice":    func(o *Options) { o.Workloads = []string{"pingpong", "stream", "pingpong"} },
		"size twice":        func(o *Options) { o.Sizes = []int{1 << 10, 64, 1 << 10} },
		"connections twice": func(o *Options) { o.FaninConns = []int{4, 4} },
		"placement twice":   func(o *Options) { o.Placements = []Placement{{Name: "unpinned"}, {Name: "unpinned"}} },
	} {
		o := base
		mod(&o)
		_, err := NewRunner(o)
		if !errors.Is(err, ErrBadOptions) {
			t.Errorf("%s: err = %v, want ErrBadOptions", name, err)
		}
		if strings.HasSuffix(name, "twice") && (err == nil || !strings.Contains(err.Error(), "given twice")) {
			t.Errorf("%s: err = %v, want one naming the value given twice", name, err)
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
