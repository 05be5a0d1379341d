"""The lab's time source: an SNTP server (RFC 4330, server mode) from the host's clock.

A node in certificate mode sets its clock before the TLS handshake (an ESP32 starts at
2000-01-01); in a lab without internet it asks this server. One thread, one fixed-size
read and one 48-byte answer per datagram: the answer is never larger than the question,
so a forged source address gains an attacker nothing, and anything that is not a client
request is dropped unanswered.
"""

import errno
import selectors
import socket
import struct
import threading
import time

from luxnode.errors import LuxnodeError

DEFAULT_PORT = 1123  # 123 needs root
PACKET = 48
NTP_DELTA = 2208988800  # 1900-01-01 -> 1970-01-01
STRATUM = 2  # the host's clock, itself set by NTP
PRECISION = -20  # about a microsecond (log2 seconds)
REFERENCE_ID = b"LOCL"
_MODE_CLIENT, _MODE_SERVER = 3, 4
_ANSWER = struct.Struct("!BBBb4s4s4s8s8s8s8s")


def ntp_time(unix: float) -> bytes:
    """An NTP timestamp: seconds since 1900 (modulo 2^32, era 0 until 2036) and a 32-bit fraction."""
    seconds = int(unix)
    return struct.pack("!II", (seconds + NTP_DELTA) % 2**32, int((unix - seconds) * 2**32))


def answer(request: bytes, received: float, now: float) -> bytes | None:
    """The server's answer to one request, or None for anything that is not a client request."""
    if len(request) < PACKET:
        return None
    version, mode = request[0] >> 3 & 7, request[0] & 7
    if mode != _MODE_CLIENT or not 1 <= version <= 4:
        return None
    stamp = ntp_time(now)
    return _ANSWER.pack(version << 3 | _MODE_SERVER,  # leap indicator 0: no warning
                        STRATUM, request[2], PRECISION, bytes(4), bytes(4), REFERENCE_ID,
                        stamp, request[40:48], ntp_time(received), stamp)


class SntpServer:
    """Serves time on a UDP port of every interface, or of one IPv4 ``address`` (as the lab's node
    listener), until stop()."""

    def __init__(self, port: int, address: str | None = None):
        self.port = port
        self.answered = 0
        self.ignored = 0
        self._sock = self._bind(port, address)
        self._wake_reader, self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="lab-sntp", daemon=True)

    @staticmethod
    def _bind(port: int, only: str | None) -> socket.socket:
        # One dual-stack socket, as the broker's listeners; IPv4 alone where the host has no IPv6.
        choices = ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")) if only is None else ((socket.AF_INET, only),)
        for family, address in choices:
            try:
                sock = socket.socket(family, socket.SOCK_DGRAM)
            except OSError:
                continue
            try:
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind((address, port))
                return sock
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRNOTAVAIL and only:
                    raise LuxnodeError(f"cannot listen on {only}: no such address on this machine") from None
                if exc.errno in (errno.EADDRINUSE, errno.EACCES) or family == socket.AF_INET:
                    raise LuxnodeError(f"cannot serve time on UDP port {port} ({exc.strerror or exc}); "
                                       "choose another with --ntp-port") from None
        raise LuxnodeError("cannot serve time: this host has no UDP sockets")

    def start(self) -> "SntpServer":
        self._thread.start()
        return self

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                if self._wake_reader in ready:
                    return
                self._one()

    def _one(self) -> None:
        try:
            # A longer datagram is cut to PACKET bytes: a client's extension fields and MAC are not read.
            request, source = self._sock.recvfrom(PACKET)
        except OSError:
            return  # e.g. an ICMP error from an earlier answer
        received = time.time()
        reply = answer(request, received, time.time())
        if reply is None:
            self.ignored += 1
            return
        try:
            self._sock.sendto(reply, source)
            self.answered += 1
        except OSError:
            self.ignored += 1  # an address no answer can go to

    def stop(self) -> None:
        if self._thread.is_alive():
            self._wake.send(b"x")
            self._thread.join(5)
        for sock in (self._sock, self._wake, self._wake_reader):
            sock.close()
