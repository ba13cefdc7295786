package peer

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
)

// writeFails is a connection whose writes fail as a write to a peer that
// already closed does, while what the peer sent before it closed can
// still be read.
type writeFails struct{ net.Conn }

func (writeFails) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// TestHandshakeReadsRefusalAfterFailedWrite: a server that refuses a
// connection without reading it (serve at its -max-conns) answers and
// closes at once, so the hello's write can fail; the client reports the
// server's reason (ErrRefused), not the failed write. Over shm-* it always
// did: "sending hello: write ...: broken pipe".
func TestHandshakeReadsRefusalAfterFailedWrite(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	const reason = "this server serves at most 2 connections at once"
	go func() {
		server.Write([]byte(ErrorPrefix + reason + "\n"))
		server.Close()
	}()
	_, err := Handshake(context.Background(), writeFails{client}, Hello{Kind: KindControl})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("Handshake: %v, want the refusal (ErrRefused) with the server's reason", err)
	}
}

// TestHandshakeWriteErrorWithoutAnswer: a failed hello write with no
// answer waiting is reported as the write's error.
func TestHandshakeWriteErrorWithoutAnswer(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	server.Close()
	_, err := Handshake(context.Background(), writeFails{client}, Hello{Kind: KindControl})
	if !errors.Is(err, syscall.EPIPE) || !strings.Contains(err.Error(), "sending hello") {
		t.Fatalf("Handshake: %v, want the write's error", err)
	}
}
