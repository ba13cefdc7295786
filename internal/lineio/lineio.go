// Package lineio reads newline-terminated lines of bounded length, so that
// an input without newlines (/dev/zero, a binary file) costs a bounded
// amount of memory and ends in an error instead of growing without limit.
package lineio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// ErrTooLong is wrapped by the error Read returns for a line longer than
// its maximum.
var ErrTooLong = errors.New("line too long")

// Read reads one '\n'-terminated line of at most max bytes (the newline not
// counted) from br and returns it without the newline, in a fresh slice.
// At a clean end of input it returns io.EOF; when the input ends inside a
// line it returns the bytes of that line with io.ErrUnexpectedEOF. A longer
// line fails with an error wrapping ErrTooLong as soon as more than max of
// its bytes have been read, so memory stays under max plus br's buffer.
// Other read errors (a deadline) are returned as they come, with the bytes
// of the unfinished line read until then, which br no longer holds: a
// caller that reads on must put them before what it reads next.
func Read(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > max+1 || (len(line)+len(frag) > max && (err != nil || frag[len(frag)-1] != '\n')) {
			return nil, fmt.Errorf("%w: more than %d bytes before a newline", ErrTooLong, max)
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, io.ErrUnexpectedEOF
		default:
			return line, err
		}
	}
}
