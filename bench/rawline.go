package bench

import (
	"bufio"

	"github.com/ipcbench/ipcbench/internal/lineio"
)

// MaxLineSize is the longest line of a raw-record file (run's and floor's)
// a reader accepts, in bytes, the newline not counted. A result line is
// typically under 10 KB, most of it the encoded histogram; the limit keeps
// the memory a reader spends on a file that is not raw records (/dev/zero,
// a binary file) bounded.
const MaxLineSize = 4 << 20

// ErrLineTooLong is wrapped by the error ReadLine returns for a line longer
// than MaxLineSize.
var ErrLineTooLong = lineio.ErrTooLong

// ReadLine reads one raw-record line of at most MaxLineSize bytes from br
// and returns it without its newline. At a clean end of input it returns
// io.EOF; a last line without a newline comes with io.ErrUnexpectedEOF; a
// longer line is an error wrapping ErrLineTooLong once MaxLineSize bytes of
// it have been read (see lineio.Read).
func ReadLine(br *bufio.Reader) ([]byte, error) { return lineio.Read(br, MaxLineSize) }
