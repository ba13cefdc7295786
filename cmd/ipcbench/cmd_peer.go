package main

import (
	"context"

	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// cmdPeer is the hidden `ipcbench peer` subcommand: the peer process that
// `ipcbench run` starts, speaking the control protocol on stdin/stdout. It
// refuses to run without the cookie variable (see internal/proc).
func cmdPeer(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q (the peer takes none)", args[0])
	}
	if code := peer.Main(ctx, e.stdin, e.stdout, e.stderr, all.Lookup); code != 0 {
		return &exitError{code: code}
	}
	return nil
}
