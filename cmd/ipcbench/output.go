package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/ipcbench/ipcbench/internal/private"
)

// createOutput creates the output file path that flag names, through
// private.Create: 0600, its missing directories 0700, never through a
// symbolic link, and an existing file only replaced when force is set.
// Every failure is a usage error (exit 2), before any work starts.
func createOutput(flag, path string, force bool) (*os.File, error) {
	ex := private.Refuse
	if force {
		ex = private.Replace
	}
	f, err := private.Create(path, ex)
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, private.ErrNotRegular):
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
