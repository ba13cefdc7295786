package bench

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// TestCreateOutput plants what another user could put at a predictable
// output name: a symbolic link to a file, a symbolic link to a name that
// does not exist yet, a hard link, a plain file and a directory.
// CreateOutput must refuse every one and leave the target untouched; with
// replace it must replace only the regular files, with a new file, never
// writing through the link.
func TestCreateOutput(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	plant := map[string]func(p string) error{
		"symlink":          func(p string) error { return os.Symlink(victim, p) },
		"dangling-symlink": func(p string) error { return os.Symlink(filepath.Join(dir, "nowhere"), p) },
		"hardlink":         func(p string) error { return os.Link(victim, p) },
		"file":             func(p string) error { return os.WriteFile(p, []byte("old"), 0o644) },
		"directory":        func(p string) error { return os.Mkdir(p, 0o755) },
	}
	for name, mk := range plant {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := mk(p); err != nil {
				t.Fatal(err)
			}
			f, err := CreateOutput(p, false)
			if err == nil {
				f.Abort()
				t.Fatalf("CreateOutput(%s) over a planted %s succeeded", p, name)
			}
			if !errors.Is(err, fs.ErrExist) {
				t.Errorf("error %v does not wrap fs.ErrExist", err)
			}
			f, err = CreateOutput(p, true)
			regular := name == "hardlink" || name == "file"
			if regular != (err == nil) {
				t.Fatalf("CreateOutput(%s, true) over a %s: error %v", p, name, err)
			}
			if err == nil {
				if _, err := f.Write([]byte("new")); err != nil {
					t.Fatal(err)
				}
				if err := f.Commit(); err != nil {
					t.Fatal(err)
				}
				checkMode(t, p, OutputFileMode)
				if b, _ := os.ReadFile(p); string(b) != "new" {
					t.Errorf("%s holds %q after Commit, want \"new\"", p, b)
				}
			} else if !errors.Is(err, ErrNotRegular) {
				t.Errorf("error %v does not wrap ErrNotRegular", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "nowhere")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a file was created through the dangling link")
			}
			if b, _ := os.ReadFile(victim); string(b) != "precious" {
				t.Errorf("victim now holds %q", b)
			}
		})
	}
}

// TestCreateOutputModes checks that files and the directories made for
// them get OutputFileMode and OutputDirMode (under an umask of 0, exactly).
func TestCreateOutputModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b", "out.jsonl")
	f, err := CreateOutput(p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	checkMode(t, p, OutputFileMode)
	checkMode(t, filepath.Join(dir, "a"), OutputDirMode)
	checkMode(t, filepath.Join(dir, "a", "b"), OutputDirMode)
}

// TestCreateOutputDevice: an existing device is refused without replace and
// written to as it is with it, never removed.
func TestCreateOutputDevice(t *testing.T) {
	if _, err := CreateOutput(os.DevNull, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateOutput(%s, false): %v, want fs.ErrExist", os.DevNull, err)
	}
	f, err := CreateOutput(os.DevNull, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(os.DevNull); err != nil || st.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("%s is no longer a device: %v %v", os.DevNull, st, err)
	}
}

// TestCreateOutputKeepsTheOldFile: until Commit, an existing file stays
// whole whatever is written; Abort leaves it as it was and removes what
// was written; Commit replaces it at once with the complete new file, the
// written one's mode kept; Keep of a cut-short output leaves the old file
// and keeps the new contents beside it, or at the name when it was free
// (nothing at all when nothing was written).
// Nothing but the outputs is left in the directory.
func TestCreateOutputKeepsTheOldFile(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "out.md")
	plantOld := func() {
		t.Helper()
		if err := os.WriteFile(p, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	wantOnly := func(want map[string]string) {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			name := e.Name()
			if strings.HasPrefix(name, "out.md"+PartialSuffix) {
				name = "partial"
			}
			got[name] = string(b)
		}
		if !maps.Equal(got, want) {
			t.Errorf("directory holds %q, want %q", got, want)
		}
	}
	start := func(replace bool) *Output {
		t.Helper()
		f, err := CreateOutput(p, replace)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("new")); err != nil {
			t.Fatal(err)
		}
		wantOnly(map[string]string{"out.md": "precious", "partial": "new"})
		return f
	}

	plantOld()
	start(true).Abort()
	wantOnly(map[string]string{"out.md": "precious"})

	f := start(true)
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // after Commit: nothing
	wantOnly(map[string]string{"out.md": "new"})
	checkMode(t, p, OutputFileMode)

	plantOld()
	kept, err := start(true).Keep()
	if err != nil || kept == p || !strings.HasPrefix(kept, p+PartialSuffix) {
		t.Errorf("Keep over an existing file: %q, %v; want the partial name", kept, err)
	}
	wantOnly(map[string]string{"out.md": "precious", "partial": "new"})
	os.Remove(kept)

	// Nothing written is nothing kept; a name that was free gets what
	// was written, and Commit never replaces a file that appeared
	// meanwhile without replace.
	plantOld()
	f, err = CreateOutput(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if kept, err := f.Keep(); err != nil || kept != "" {
		t.Errorf("Keep of nothing written: %q, %v; want \"\"", kept, err)
	}
	wantOnly(map[string]string{"out.md": "precious"})
	os.Remove(p)
	f, err = CreateOutput(p, false)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("new"))
	if kept, err := f.Keep(); err != nil || kept != p {
		t.Errorf("Keep of a new name: %q, %v; want %q", kept, err, p)
	}
	wantOnly(map[string]string{"out.md": "new"})
	os.Remove(p)
	f, err = CreateOutput(p, false)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("measured"))
	plantOld()
	if err := f.Commit(); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), f.Where()) {
		t.Errorf("Commit over a file that appeared meanwhile: %v, want fs.ErrExist naming %s", err, f.Where())
	}
	// What was written stays, under the name Where gives and the error
	// named: a run's records outlive a name taken while it measured.
	if where := f.Where(); !strings.HasPrefix(where, p+PartialSuffix) {
		t.Errorf("after a failed Commit Where = %q, want the partial name", where)
	}
	wantOnly(map[string]string{"out.md": "precious", "partial": "measured"})
	os.Remove(f.Where())

	f, err = CreateOutput(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil || f.Where() != p {
		t.Errorf("Commit: %v; Where = %q, want %q", err, f.Where(), p)
	}
}

func checkMode(t *testing.T, p string, want fs.FileMode) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s has mode %v, want %v", p, st.Mode().Perm(), want)
	}
}

// TestCreateOutputLongName: every file name up to NAME_MAX works,
// however little room it leaves for PartialSuffix: a last element of
// exactly NAME_MAX bytes (in the file system's own limit) is written
// beside its name, under a name no longer than its own that still holds
// PartialSuffix, and takes its name on Commit; Abort and Keep of nothing
// leave nothing behind; one byte more is refused, by CheckOutput too,
// with an error that names it and creates nothing.
func TestCreateOutputLongName(t *testing.T) {
	dir := t.TempDir()
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		t.Fatal(err)
	}
	nameMax := int(sfs.Namelen)
	empty := func() {
		t.Helper()
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Errorf("%s holds %v, want nothing", dir, ents)
		}
	}
	// The name ends in runes of 3 bytes, one of them over the place its
	// partial name cuts it: the cut keeps whole runes.
	p := filepath.Join(dir, strings.Repeat("a", nameMax-30)+strings.Repeat("€", 10))
	for _, replace := range []bool{false, true} {
		f, err := CreateOutput(p, replace)
		if err != nil {
			t.Fatalf("CreateOutput of a %d-byte name: %v", nameMax, err)
		}
		where := f.Where()
		head, _, found := strings.Cut(filepath.Base(where), PartialSuffix)
		if filepath.Dir(where) != dir || len(filepath.Base(where)) > nameMax || !found ||
			!strings.HasPrefix(filepath.Base(p), head) || !utf8.ValidString(where) {
			t.Errorf("a %d-byte name is written to %q", nameMax, where)
		}
		f.Abort()
		empty()
		if f, err = CreateOutput(p, replace); err != nil {
			t.Fatal(err)
		}
		if kept, err := f.Keep(); kept != "" || err != nil {
			t.Errorf("Keep of nothing written: %q, %v", kept, err)
		}
		empty()
	}
	f, err := CreateOutput(p, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil || f.Where() != p {
		t.Fatalf("Commit of a %d-byte name: %v; Where = %q", nameMax, err, f.Where())
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Errorf("%s holds %q after Commit, want \"new\"", p, b)
	}
	os.Remove(p)

	long := filepath.Join(dir, strings.Repeat("a", nameMax+1))
	for _, replace := range []bool{false, true} {
		if err := CheckOutput(long, replace); !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("CheckOutput of a %d-byte name: %v, want ENAMETOOLONG", nameMax+1, err)
		}
		f, err := CreateOutput(long, replace)
		if err == nil {
			f.Abort()
			t.Fatalf("CreateOutput of a %d-byte name succeeded", nameMax+1)
		}
		if !errors.Is(err, syscall.ENAMETOOLONG) || !strings.Contains(err.Error(), long) {
			t.Errorf("CreateOutput of a %d-byte name: %v, want ENAMETOOLONG naming it", nameMax+1, err)
		}
	}
	empty()
}

// TestCreateOutputRemovesDirsItMade: the directories made for an output
// are gone again when CreateOutput fails or the output is aborted, and stay
// when it is committed; a directory that was there before always stays.
func TestCreateOutputRemovesDirsItMade(t *testing.T) {
	root := t.TempDir()
	long := strings.Repeat("n", 256) // longer than any name Linux takes

	if _, err := CreateOutput(filepath.Join(root, "a", "b", long), false); err == nil {
		t.Fatal("CreateOutput of a too-long name succeeded")
	}
	if _, err := os.Lstat(filepath.Join(root, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after a failed CreateOutput the directory it made is there (%v)", err)
	}

	o, err := CreateOutput(filepath.Join(root, "c", "d", "out"), false)
	if err != nil {
		t.Fatal(err)
	}
	o.Abort()
	if _, err := os.Lstat(filepath.Join(root, "c")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after Abort the directory made for the output is there (%v)", err)
	}

	o, err = CreateOutput(filepath.Join(root, "e", "out"), false)
	if err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("x"))
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	o.Abort()
	if b, err := os.ReadFile(filepath.Join(root, "e", "out")); err != nil || string(b) != "x" {
		t.Fatalf("committed output: %q, %v", b, err)
	}

	o, err = CreateOutput(filepath.Join(root, "e", "f", "out"), false)
	if err != nil {
		t.Fatal(err)
	}
	o.Abort()
	if _, err := os.Lstat(filepath.Join(root, "e", "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after Abort the directory made for the output is there (%v)", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "e", "out")); err != nil {
		t.Fatalf("Abort of a second output removed what was there before: %v", err)
	}
}

// TestCreateOutputDirsRace: an output aborted while another is being made
// in the same new directory never makes the other fail, and a directory
// someone else made meanwhile is not removed as made for the output.
func TestCreateOutputDirsRace(t *testing.T) {
	for i := range 1000 {
		root := t.TempDir()
		d := filepath.Join(root, "d")
		a, err := CreateOutput(filepath.Join(d, "a"), false)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			b, err := CreateOutput(filepath.Join(d, "b"), false)
			if err == nil {
				b.Write([]byte("b"))
				err = b.Commit()
			}
			done <- err
		}()
		a.Abort()
		if err := <-done; err != nil {
			t.Fatalf("round %d: the second output failed while the first was aborted: %v", i, err)
		}
		if _, err := os.Stat(filepath.Join(d, "b")); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	// MakeOutputDirs counts only what it made itself.
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "x"), 0o755)
	made, err := MakeOutputDirs(filepath.Join(root, "x", "y"))
	if err != nil || len(made) != 1 || made[0] != filepath.Join(root, "x", "y") {
		t.Fatalf("MakeOutputDirs = %v, %v; want only x/y", made, err)
	}
}

// TestOutputNameEndingInSlash: a name ending in '/' is refused before
// anything is made for it.
func TestOutputNameEndingInSlash(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "new") + "/"
	if err := CheckOutput(p, false); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("CheckOutput(%q) = %v, want ErrNotRegular", p, err)
	}
	if _, err := CreateOutput(p, true); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("CreateOutput(%q) = %v, want ErrNotRegular", p, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a directory was made for a name ending in '/' (%v)", err)
	}
}

// TestCheckOutputSpecial: a device at an output's name is refused without
// replace as a device that replace writes to in place (not as a file it
// would replace), and taken with it.
func TestCheckOutputSpecial(t *testing.T) {
	err := CheckOutput(os.DevNull, false)
	if !errors.Is(err, fs.ErrExist) || !errors.Is(err, ErrSpecial) {
		t.Fatalf("CheckOutput(%s, false) = %v; want fs.ErrExist and ErrSpecial", os.DevNull, err)
	}
	if err := CheckOutput(os.DevNull, true); err != nil {
		t.Fatalf("CheckOutput(%s, true) = %v", os.DevNull, err)
	}
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckOutput(f, false); !errors.Is(err, fs.ErrExist) || errors.Is(err, ErrSpecial) {
		t.Fatalf("CheckOutput(regular file, false) = %v; want fs.ErrExist alone", err)
	}
	// A socket is neither written to nor replaced, -force or not.
	sock := filepath.Join(t.TempDir(), "s")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	for _, replace := range []bool{false, true} {
		if err := CheckOutput(sock, replace); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "a socket") {
			t.Errorf("CheckOutput(socket, %v) = %v; want ErrNotRegular saying a socket", replace, err)
		}
	}
}

// TestCreateNumberedOutput: outputs of a made-up name (run's default,
// ipcbench-TIME.jsonl) started in the same second never collide: each
// takes the first free name, with -2, -3, ... before the extension, as
// it is committed or kept, and nothing that was there (a file, a symbolic
// link, a directory) is replaced or followed.
func TestCreateNumberedOutput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ipcbench-20261201-133046.jsonl")
	name := func(n string) string { return filepath.Join(dir, "ipcbench-20261201-133046"+n+".jsonl") }
	write := func(o *Output, s string) {
		t.Helper()
		if _, err := o.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Two outputs started in the same second, both before either has a
	// name; meanwhile a file appears at the name the second would take.
	first, err := CreateNumberedOutput(path)
	if err != nil {
		t.Fatal(err)
	}
	second, err := CreateNumberedOutput(path)
	if err != nil {
		t.Fatal(err)
	}
	write(first, "first")
	write(second, "second")
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name("-2"), []byte("someone else's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := second.Commit(); err != nil {
		t.Fatal(err)
	}
	if first.Name() != path || first.Where() != path || second.Name() != name("-3") || second.Where() != name("-3") {
		t.Errorf("names %s and %s, want %s and %s", first.Where(), second.Where(), path, name("-3"))
	}
	// A third, started once the name is taken, is no error either; a
	// symbolic link and a directory at the next names are passed over.
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, name("-4")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(name("-5"), 0o700); err != nil {
		t.Fatal(err)
	}
	third, err := CreateNumberedOutput(path)
	if err != nil {
		t.Fatalf("a taken name: %v", err)
	}
	write(third, "third")
	if kept, err := third.Keep(); err != nil || kept != name("-6") || third.Name() != kept {
		t.Errorf("Keep: %q, %v (Name %q); want %s", kept, err, third.Name(), name("-6"))
	}
	for n, want := range map[string]string{"": "first", "-2": "someone else's", "-3": "second", "-6": "third"} {
		if b, err := os.ReadFile(name(n)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name(n), b, err, want)
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
		t.Errorf("the link's target: %q, %v", b, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*"+PartialSuffix+"*")); len(left) > 0 {
		t.Errorf("partial files left: %v", left)
	}

	// Many at once: every one gets a name of its own, whole.
	dir = t.TempDir()
	path = filepath.Join(dir, "run.jsonl")
	outs := make([]*Output, 20)
	for i := range outs {
		if outs[i], err = CreateNumberedOutput(path); err != nil {
			t.Fatal(err)
		}
		write(outs[i], strings.Repeat("x", i+1))
	}
	errs := make(chan error, len(outs))
	for _, o := range outs {
		go func() { errs <- o.Commit() }()
	}
	for range outs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	names := map[string]bool{}
	for i, o := range outs {
		if names[o.Name()] {
			t.Errorf("%s taken twice", o.Name())
		}
		names[o.Name()] = true
		if b, err := os.ReadFile(o.Name()); err != nil || len(b) != i+1 {
			t.Errorf("%s: %d bytes, %v; want %d", o.Name(), len(b), err, i+1)
		}
	}
	if _, ok := names[filepath.Join(dir, "run-20.jsonl")]; !ok {
		t.Errorf("names %v, want run.jsonl to run-20.jsonl", slices.Sorted(maps.Keys(names)))
	}
}
