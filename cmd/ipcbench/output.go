package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/ipcbench/ipcbench/bench"
)

// createOutput creates the output file path that flag names, through
// bench.CreateOutput: never through a symbolic link, and an existing file
// only replaced when force is set. Every failure is a usage error (exit 2),
// before any work starts.
func createOutput(flag, path string, force bool) (*os.File, error) {
	f, err := bench.CreateOutput(path, force)
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, bench.ErrNotRegular):
		return nil, usagef("%s: %v; choose another name", flag, err)
	case errors.Is(err, fs.ErrExist):
		return nil, usagef("%s: %v (-force replaces it)", flag, err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, usagef("%s: cannot create %s: %v", flag, pe.Path, pe.Err)
	}
	return nil, usagef("%s: cannot create %s: %v", flag, path, err)
}
