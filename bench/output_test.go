package bench

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
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
				f.Close()
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
				if _, err := f.WriteString("new"); err != nil {
					t.Fatal(err)
				}
				f.Close()
				checkMode(t, p, OutputFileMode)
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
	f.Close()
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
	f.Close()
	if st, err := os.Stat(os.DevNull); err != nil || st.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("%s is no longer a device: %v %v", os.DevNull, st, err)
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
