// Package private holds the modes of what the transports create for
// themselves: a unix socket and its directory, a shared-memory mapping
// (memfd or file), and makes their private directories (TempDir), which a
// later process removes when a killed one left them. They are never wider than these, whatever the umask:
// another user who reached them could join or disturb a measurement. (The outputs a user
// asks for follow another rule: bench.OutputFileMode.)
package private

import "io/fs"

// The modes of a transport's own files and directories.
const (
	FileMode fs.FileMode = 0o600 // sockets, shared-memory mappings
	DirMode  fs.FileMode = 0o700 // socket directories
)
