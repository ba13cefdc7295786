package floor

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/internal/frame"
)

// payloadProbe is a C program over floor.h's payload functions: "fill N
// CONN SEQ" writes fill's N bytes to stdout; "check CONN SEQ OFF" checks
// stdin as the bytes at OFF of that payload (check_part) and prints ok.
const payloadProbe = `#include "floor.h"
int main(int argc, char **argv) {
	if (argc == 5 && strcmp(argv[1], "fill") == 0) {
		size_t n = strtoull(argv[2], NULL, 10);
		char *b = malloc(n);
		fill(b, n, (uint32_t)strtoul(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
		fwrite(b, 1, n, stdout);
		return 0;
	}
	static char b[1 << 22];
	size_t n = fread(b, 1, sizeof b, stdin);
	check_part(b, n, (uint32_t)strtoul(argv[2], NULL, 10), strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10), "payload");
	puts("ok");
	return 0;
}
`

// TestCPayloadsAreGoPayloads: the C programs stamp, pattern and check
// payloads byte for byte as internal/frame does (Fill, Check, CheckPart),
// so the C side checks every byte the Go side checks.
func TestCPayloadsAreGoPayloads(t *testing.T) {
	p := build(t)
	src := filepath.Join(p.Dir, "probe.c")
	if err := os.WriteFile(src, []byte(payloadProbe), 0o600); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(p.Dir, "probe")
	if out, err := exec.Command(p.Compiler, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", probe, src).CombinedOutput(); err != nil {
		t.Fatalf("compiling the probe: %v\n%s", err, out)
	}
	run := func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.Command(probe, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		return cmd.CombinedOutput()
	}
	const conn uint32 = 7
	const seq uint64 = 0x1234abcd5678
	cs, qs := strconv.FormatUint(uint64(conn), 10), strconv.FormatUint(seq, 10)
	for _, n := range []int{24, 64, 1000, 64 << 10, 1<<20 + 3} {
		got, err := run(nil, "fill", strconv.Itoa(n), cs, qs)
		if err != nil {
			t.Fatalf("fill %d: %v", n, err)
		}
		want := make([]byte, n)
		frame.Fill(want, conn, seq)
		if !bytes.Equal(got, want) {
			t.Fatalf("fill %d: the C payload differs from frame.Fill's", n)
		}
		// Checked whole and in two pieces, it passes; one wrong byte
		// anywhere, in the stamp or the pattern, fails it.
		for _, off := range []int{0, 5, 24, n / 2} {
			if out, err := run(want[off:], "check", cs, qs, strconv.Itoa(off)); err != nil || string(out) != "ok\n" {
				t.Errorf("check %d bytes from %d: %v %q", n, off, err, out)
			}
		}
		for _, bad := range []int{0, 9, 23, 24, n - 1} {
			if bad >= n {
				continue
			}
			c := bytes.Clone(want)
			c[bad]++
			if frame.Check(c, conn, seq) == nil {
				t.Fatalf("frame.Check passes a payload with byte %d changed", bad)
			}
			out, err := run(c, "check", cs, qs, "0")
			if err == nil || !strings.Contains(string(out), "byte at offset "+strconv.Itoa(bad)+" ") {
				t.Errorf("%d bytes with byte %d changed: %v %q; want a failure naming offset %d", n, bad, err, out, bad)
			}
		}
	}
}
