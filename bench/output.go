package bench

import "io/fs"

// Modes of what ipcbench writes because the user asked for it: raw-record
// files, plots, the floor table, and the directories made to hold them.
// They are readable by everyone, as a shell redirection or any build tool
// would leave them (the umask still applies), because results are meant to
// be shared and committed. The private state a transport creates (socket
// directories, shared-memory files) is 0700/0600 and never uses these.
const (
	OutputFileMode fs.FileMode = 0o644
	OutputDirMode  fs.FileMode = 0o755
)
