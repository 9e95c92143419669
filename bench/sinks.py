"""Lean loopback sinks for the sending benchmarks, run as their own processes so they do
not compete with the measured sender for the GIL.

    python bench/sinks.py smtp PORT     # SMTP: answers every command, discards DATA
    python bench/sinks.py sendgrid PORT # HTTP: 202 + X-Message-Id for POST /v3/mail/send

Each finds the end of DATA / the body with C-level byte searches, so the sink is never the
bottleneck: what is measured is the client.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SmtpSink(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock, buffer = self.request, b""
        # Replies are small writes: without NODELAY, Nagle holds each pipelined reply until
        # the client's delayed ACK (~40 ms), as a real MTA's batched replies would not.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"220 sink ESMTP\r\n")
        while True:
            while b"\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            line, buffer = buffer.split(b"\r\n", 1)
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                sock.sendall(b"250-sink\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
            elif verb == b"DATA":
                sock.sendall(b"354 go ahead\r\n")
                rest = _after_data(sock, buffer)
                if rest is None:
                    return
                buffer = rest
                sock.sendall(b"250 queued\r\n")
            elif verb == b"QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            else:
                sock.sendall(b"250 OK\r\n")


def _after_data(sock: socket.socket, buffer: bytes) -> bytes | None:
    """Discard a message up to its final "." line; what the client sent after it (None:
    it hung up). Each received byte is looked at once at most, and the usual chunk, which
    ends with the final dot (the client waits for our reply), only at its last 5 bytes:
    a 110 KB edition costs the sink a few microseconds, not a scan of the whole message."""
    while True:
        if buffer.endswith(b"\r\n.\r\n"):
            return b""
        if (end := buffer.find(b"\r\n.\r\n")) >= 0:  # commands pipelined after the dot
            return buffer[end + 5:]
        chunk = sock.recv(1 << 20)
        if not chunk:
            return None
        buffer = buffer[-4:] + chunk


class SendGridSink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(202)
        self.send_header("X-Message-Id", uuid.uuid4().hex)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class ThreadingTCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "smtp":
        ThreadingTCP(("127.0.0.1", port), SmtpSink).serve_forever()
    else:
        ThreadingHTTPServer(("127.0.0.1", port), SendGridSink).serve_forever()
