package all

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
)

var wantNames = []string{"tcp-localhost", "tcp-public", "unix", "pipe", "shm-lock", "shm-ring"}

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
