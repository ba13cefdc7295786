// Package ctxdeadline ties a connection's deadline to a context: a read or
// write blocked on a socket or pipe ends when the context does, and a
// deadline that fired at ctx's is told as ctx's.
package ctxdeadline

import (
	"context"
	"time"
)

// OnDone sets a deadline in the past through set (a connection's
// SetDeadline, SetReadDeadline or SetWriteDeadline) when ctx ends, which
// ends a read or write blocked on the connection. The function it returns
// stops that, and, when ctx ended already, waits until that deadline is
// set: a caller that then clears it or sets another knows that nothing of
// ctx's lands after it (a late one failed the next call on the
// connection).
func OnDone(ctx context.Context, set func(time.Time) error) (stop func()) {
	fired := make(chan struct{})
	st := context.AfterFunc(ctx, func() {
		set(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !st() {
			<-fired
		}
	}
}

// Ended returns ctx.Err(), or context.DeadlineExceeded when ctx's
// deadline has passed but ctx does not say so yet: a socket deadline set
// to ctx's fires at the same moment as ctx's own timer, and may come
// first.
func Ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
