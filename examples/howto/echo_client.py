#!/usr/bin/env python3
"""An echo client written the way the Python Socket Programming HOWTO teaches.

It is a *foreign* client for ipcbench: `ipcbench serve -t SPEC -listen ADDRESS`
answers it as an echo server. It connects, then sends --count messages of
--size bytes one at a time with `sendall`, reads each echo back with `recv`
in a loop (a stream socket may deliver fewer bytes than asked), and checks
that every echoed byte equals what it sent. It prints one line,
"messages=N bytes=N mean_rtt_us=X", and exits 0; a wrong or missing echo
prints the reason on stderr and exits 1.

Framing is the same as echo_server.py's: length (4-byte big-endian prefix,
the default), delimited (b"\\n" after each payload) or fixed.

    python3 echo_client.py 127.0.0.1:7000 --count 1000 --size 64
    python3 echo_client.py /tmp/ipcbench.sock --framing delimited
"""

import argparse
import socket
import struct
import sys
import time


def recv_exactly(sock, n):
    chunks = []
    got = 0
    while got < n:
        chunk = sock.recv(min(n - got, 65536))
        if chunk == b"":
            raise RuntimeError("server closed the connection %d bytes into a %d-byte echo" % (got, n))
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def connect(address):
    if ":" in address and not address.startswith(("/", ".")):
        host, port = address.rsplit(":", 1)
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.connect((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(address)
    return s


def payload(i, size):
    """A payload that differs per message and never contains b"\\n"."""
    stamp = b"%016x" % i
    body = (stamp + bytes(range(32, 127))) * (size // 111 + 1)
    return body[:size]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("address", help="HOST:PORT (TCP) or a path (Unix domain socket)")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--framing", choices=("length", "delimited", "fixed"), default="length")
    args = p.parse_args()
    if args.count <= 0 or args.size <= 0:
        p.error("--count and --size must be positive")

    sock = connect(args.address)
    total_ns = 0
    try:
        for i in range(args.count):
            msg = payload(i, args.size)
            if args.framing == "length":
                frame = struct.pack(">I", len(msg)) + msg
            elif args.framing == "delimited":
                frame = msg + b"\n"
            else:
                frame = msg
            t0 = time.perf_counter_ns()
            sock.sendall(frame)
            echo = recv_exactly(sock, len(frame))
            total_ns += time.perf_counter_ns() - t0
            if echo != frame:
                at = next(j for j in range(len(frame)) if echo[j] != frame[j])
                print("message %d: echo differs at byte %d" % (i, at), file=sys.stderr)
                return 1
    except (OSError, RuntimeError) as e:
        print("echo client: %s" % e, file=sys.stderr)
        return 1
    finally:
        sock.close()
    print("messages=%d bytes=%d mean_rtt_us=%.1f"
          % (args.count, args.count * args.size, total_ns / args.count / 1000.0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
