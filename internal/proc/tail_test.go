package proc

import (
	"slices"
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
		tail4  string
	}{
		{"empty", nil, "", ""},
		{"fits", []string{"ab", "cd"}, "abcd", "abcd"},
		{"exactly full", []string{"abcd", "efgh"}, "abcdefgh", "efgh"},
		{"drops oldest", []string{"abcde", "fghij"}, "cdefghij", "ghij"},
		{"one huge write", []string{"x", strings.Repeat("y", 20) + "z"}, "yyyyyyyz", "yyyz"},
		{"tail starts at a line", []string{"aaaa\nbb\ncc"}, "aa\nbb\ncc", "cc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &tailBuffer{max: 8}
			n := 0
			for _, w := range tt.writes {
				got, err := b.Write([]byte(w))
				if err != nil || got != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, got, err)
				}
				n += got
			}
			if got := b.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := b.Tail(4); got != tt.tail4 {
				t.Errorf("Tail(4) = %q, want %q", got, tt.tail4)
			}
		})
	}
}

func TestCheckHandshake(t *testing.T) {
	tests := []struct {
		line string
		want string // "" = valid
	}{
		{"ipcbench-peer/1 pid=42", ""},
		{"ipcbench-peer/1 pid=43", "handshake from pid 43"},
		{"ipcbench-peer/2 pid=42", "handshake version 2"},
		{"ipcbench-peer/x pid=42", "malformed handshake"},
		{"ipcbench-peer/1 pid=-1", "malformed handshake"},
		{"ipcbench-peer/1", "malformed handshake"},
		{"PASS", "unexpected first line"},
		{"", "unexpected first line"},
	}
	for _, tt := range tests {
		err := checkHandshake([]byte(tt.line), 42)
		if tt.want == "" {
			if err != nil {
				t.Errorf("checkHandshake(%q) = %v, want nil", tt.line, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("checkHandshake(%q) = %v, want an error containing %q", tt.line, err, tt.want)
		}
	}
}

func TestRaceEnv(t *testing.T) {
	tests := []struct {
		gorace string
		want   []string // with the race detector; nil without
	}{
		{"", []string{"GORACE=atexit_sleep_ms=0"}},
		{"halt_on_error=1", []string{"GORACE=halt_on_error=1 atexit_sleep_ms=0"}},
		{"atexit_sleep_ms=5", nil},
	}
	for _, tt := range tests {
		t.Setenv("GORACE", tt.gorace)
		want := tt.want
		if !raceEnabled {
			want = nil
		}
		if got := raceEnv(); !slices.Equal(got, want) {
			t.Errorf("GORACE=%q: raceEnv() = %q, want %q", tt.gorace, got, want)
		}
	}
}
