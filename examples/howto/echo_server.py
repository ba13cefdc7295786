#!/usr/bin/env python3
"""An echo server written the way the Python Socket Programming HOWTO teaches.

It is a *foreign* server for ipcbench: ipcbench did not write it, and
`ipcbench run -connect ADDRESS -peer echo` measures it. Everything here is
deliberately plain: a listening socket, one thread per client, `recv` in a
loop until a whole message has arrived (a stream socket may hand over fewer
bytes than asked), and `sendall` for the reply.

Framing (how the byte stream is cut into messages), chosen with --framing:
  length     a 4-byte big-endian length, then that many payload bytes (default)
  delimited  the payload, then one b"\\n"
  fixed      exactly --size bytes per message

Addresses: HOST:PORT for TCP (port 0 picks a free port), or a filesystem path
for a Unix domain socket. The server prints one line, "listening on ADDRESS",
once it accepts connections, and on SIGINT or SIGTERM it prints a summary
("messages=N bytes=N clients=N errors=N") and exits 0.

    python3 echo_server.py 127.0.0.1:0
    python3 echo_server.py /tmp/echo.sock --framing delimited
"""

import argparse
import os
import signal
import socket
import struct
import sys
import threading

MAX_MESSAGE = 64 << 20  # refuse larger length prefixes instead of allocating them


class Broken(Exception):
    """The client closed the connection in the middle of a message."""


def recv_exactly(sock, n):
    """Receive exactly n bytes; None at a clean end before the first byte."""
    chunks = []
    got = 0
    while got < n:
        chunk = sock.recv(min(n - got, 65536))
        if chunk == b"":
            if got == 0:
                return None
            raise Broken("connection closed %d bytes into a %d-byte read" % (got, n))
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def messages_length(sock):
    while True:
        head = recv_exactly(sock, 4)
        if head is None:
            return
        (n,) = struct.unpack(">I", head)
        if n > MAX_MESSAGE:
            raise Broken("length prefix %d is over the %d-byte limit" % (n, MAX_MESSAGE))
        body = recv_exactly(sock, n) if n else b""
        if body is None:
            raise Broken("connection closed after a length prefix")
        yield head + body, n


def messages_fixed(sock, size):
    while True:
        body = recv_exactly(sock, size)
        if body is None:
            return
        yield body, size


def messages_delimited(sock, delim=b"\n"):
    pending = b""
    while True:
        i = pending.find(delim)
        if i >= 0:
            msg, pending = pending[: i + 1], pending[i + 1 :]
            yield msg, len(msg) - 1
            continue
        if len(pending) > MAX_MESSAGE:
            raise Broken("no delimiter within %d bytes" % MAX_MESSAGE)
        chunk = sock.recv(65536)
        if chunk == b"":
            if pending:
                raise Broken("connection closed inside a message")
            return
        pending += chunk


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages = self.bytes = self.clients = self.errors = 0

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


def serve_client(sock, args, counters):
    counters.add(clients=1)
    try:
        if args.framing == "length":
            msgs = messages_length(sock)
        elif args.framing == "fixed":
            msgs = messages_fixed(sock, args.size)
        else:
            msgs = messages_delimited(sock)
        for frame, payload in msgs:
            sock.sendall(frame)  # the whole frame goes back, framing bytes included
            counters.add(messages=1, bytes=payload)
    except (Broken, OSError) as e:
        counters.add(errors=1)
        print("client: %s" % e, file=sys.stderr)
    finally:
        sock.close()


def listen(address):
    if ":" in address and not address.startswith(("/", ".")):
        host, port = address.rsplit(":", 1)
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
        s.listen(128)
        h, p = s.getsockname()[:2]
        shown = "[%s]:%d" % (h, p) if family == socket.AF_INET6 else "%s:%d" % (h, p)
        return s, shown, None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(address)
    s.listen(128)
    return s, address, address


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("address", help="HOST:PORT (TCP) or a path (Unix domain socket)")
    p.add_argument("--framing", choices=("length", "delimited", "fixed"), default="length")
    p.add_argument("--size", type=int, default=0, help="message size for --framing fixed")
    args = p.parse_args()
    if args.framing == "fixed" and args.size <= 0:
        p.error("--framing fixed needs --size N (N > 0)")

    server, shown, path = listen(args.address)
    counters = Counters()
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
        server.close()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print("listening on %s" % shown, flush=True)
    try:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                break
            threading.Thread(target=serve_client, args=(client, args, counters), daemon=True).start()
    finally:
        server.close()
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    print("messages=%d bytes=%d clients=%d errors=%d"
          % (counters.messages, counters.bytes, counters.clients, counters.errors), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
