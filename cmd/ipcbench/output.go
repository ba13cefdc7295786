package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ipcbench/ipcbench/bench"
)

// createOutput starts the output file path that flag names, through
// bench.CreateOutput: never through a symbolic link, an existing file
// only replaced when force is set, and then only by a complete output
// (the caller's Commit). Every failure is a usage error (exit 2), before
// any work starts.
func createOutput(flag, path string, force bool) (*bench.Output, error) {
	f, err := bench.CreateOutput(path, force)
	if err != nil {
		return nil, outputError(flag, path, err)
	}
	return f, nil
}

// sameFile reports whether the paths a and b name one file: the same path
// once made absolute and clean, or two names of one existing file.
func sameFile(a, b string) bool {
	aa, aerr := filepath.Abs(a)
	ba, berr := filepath.Abs(b)
	if aerr == nil && berr == nil && aa == ba {
		return true
	}
	as, aerr := os.Stat(a)
	bs, berr := os.Stat(b)
	return aerr == nil && berr == nil && os.SameFile(as, bs)
}

// checkOutput returns the usage error createOutput would give for what
// is at path now (bench.CheckOutput), without creating anything.
func checkOutput(flag, path string, force bool) error {
	if err := bench.CheckOutput(path, force); err != nil {
		return outputError(flag, path, err)
	}
	return nil
}

// outputError is the usage error for err, bench.CreateOutput's error for
// path, the file flag names.
func outputError(flag, path string, err error) error {
	switch {
	case errors.Is(err, bench.ErrNotRegular):
		return usagef("%s: %v; choose another name", flag, err)
	case errors.Is(err, bench.ErrSpecial):
		return usagef("%s: %v", flag, err)
	case errors.Is(err, fs.ErrExist):
		return usagef("%s: %v (-force replaces it)", flag, err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return usagef("%s: cannot create %s: %v", flag, pe.Path, pe.Err)
	}
	return usagef("%s: cannot create %s: %v", flag, path, err)
}

// keepRecords ends o, the raw records of command name cut short by an
// interrupt or a failure, with Keep, and returns where they are ("" when
// none were written). When they could not take their name (-force would
// have replaced a file there, which stays as it was), it says where they
// are on stderr.
func keepRecords(e *env, name string, o *bench.Output) string {
	kept, err := o.Keep()
	switch {
	case err != nil:
		fmt.Fprintf(e.stderr, "ipcbench %s: %v\n", name, err)
	case kept != "" && kept != o.Name():
		fmt.Fprintf(e.stderr, "ipcbench %s: the records so far are in %s; %s is as it was\n", name, kept, o.Name())
	}
	return kept
}

// filesSince returns the files that match pattern (filepath.Glob) and
// were last modified at or after t, for naming what a killed process left.
func filesSince(pattern string, t time.Time) []string {
	matches, _ := filepath.Glob(pattern)
	var left []string
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() && !st.ModTime().Before(t.Truncate(time.Second)) {
			left = append(left, m)
		}
	}
	return left
}
