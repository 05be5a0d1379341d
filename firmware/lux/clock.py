# The clock before a certificate is checked: an ESP32 starts at 2000-01-01 at every
# power-on and its mbedTLS checks the broker certificate's dates. SNTP (RFC 4330) over
# one non-blocking UDP socket: a request, an answer within _WAIT_MS, otherwise again
# after a growing pause; the node's loop keeps running meanwhile and MQTT waits (no
# plain-text fallback). A server's name is resolved as the broker's is (lux.dns), since
# the ports' getaddrinfo blocks for seconds. Loaded in certificate mode until the clock is set.
import errno
import random
import select
import socket
from time import gmtime, sleep_ms, ticks_add, ticks_diff, ticks_ms

import machine
from micropython import const

_WAIT_MS = const(2000)  # for the answer to one request
_RETRY_MAX_MS = const(60000)
# NTP counts seconds from 1900; gmtime() from the port's epoch (2000 or 1970).
_NTP_DELTA = 3155673600 if gmtime(0)[0] == 2000 else 2208988800


class Clock:
    def __init__(self, server, log):
        """server: host or host:port (123)."""
        self.server = server
        host, port = server.split(":") if ":" in server else (server, 123)  # as Config checked it
        self._host, self._port = host, int(port)
        self.log = log
        self._req = bytearray(48)
        self._req[0] = 0x23  # version 4, mode 3 (client)
        self._sock = None
        self._poller = select.poll()
        self._sent = 0
        self._next_try = ticks_ms()
        self._attempt = 0
        self._addr = None  # the server's, once resolved; resolved again after a failure
        self._qid = None  # the id of the DNS question in flight, else None
        self._port_lookup = False  # the station's DNS port is closed: getaddrinfo instead
        self.feed = lambda: None  # the watchdog's feed (Node.run), around a lookup that may block

    def poll(self, timeout_ms):
        """True once the clock is set; waits at most about timeout_ms."""
        if self._sock is None:
            if ticks_diff(ticks_ms(), self._next_try) < 0:
                sleep_ms(timeout_ms)
                return False
            try:
                self._start()
            except OSError as e:
                self._retry(e)
            return False
        for _ in self._poller.ipoll(timeout_ms):
            break
        try:
            if self._qid is not None:
                self._resolved(self._sock.recv(512))
                return False
            data = self._sock.recv(64)
        except OSError as e:
            if e.errno == errno.ECONNREFUSED and self._qid is not None:  # a host's loopback: no DNS server
                self._port_lookup = True
                self._close()
            elif e.errno != errno.EAGAIN:
                self._retry(e)
            elif ticks_diff(ticks_ms(), self._sent) > _WAIT_MS:
                self._retry("no DNS answer" if self._qid is not None else "no answer")
            return False
        secs = self._seconds(data)
        if secs is None:
            return False  # not the answer to this request: wait on
        self._close()
        t = gmtime(secs - _NTP_DELTA)
        machine.RTC().datetime((t[0], t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0))
        self.log("clock: %d-%02d-%02d %02d:%02d:%02d UTC from %s" % (t[:6] + (self.server,)))
        return True

    def _start(self):
        """The request, once the server's address is known; until then the DNS question."""
        addr = self._addr
        if addr is None:
            from . import dns

            server = None if self._port_lookup or dns.numeric(self._host) else dns.server(self._host)
            if server:
                self._sock, self._qid = dns.ask(self._host, server)
                self._poller.register(self._sock, select.POLLIN)
                self._sent = ticks_ms()
                return
            self.feed()  # the lookup blocks while lwIP retries: only where no DNS server is known
            addr = self._addr = socket.getaddrinfo(self._host, self._port)[0][-1]
            self.feed()
        self._ask(addr)

    def _resolved(self, data):
        """The DNS answer (lux.dns.address) came: ask the server at once."""
        from . import dns

        ip = dns.address(data, self._qid, self._host)
        if ip:
            self._close()
            addr = self._addr = socket.getaddrinfo(ip, self._port)[0][-1]  # an address: no lookup
            self._ask(addr)

    def _ask(self, addr):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock = s
        s.setblocking(False)
        self._poller.register(s, select.POLLIN)
        req = self._req
        for i in range(40, 48):  # a fresh transmit time: the answer must echo it
            req[i] = random.getrandbits(8)
        s.sendto(req, addr)
        self._sent = ticks_ms()

    def _seconds(self, data):
        """The server's transmit time (s since 1900) from a valid answer, else None."""
        if len(data) < 48 or data[0] & 7 != 4 or data[0] >> 6 == 3 or not 1 <= data[1] <= 15 \
                or data[24:32] != self._req[40:48]:
            return None  # not a server, unsynchronised, or not an answer to this request
        secs = data[40] << 24 | data[41] << 16 | data[42] << 8 | data[43]
        return secs or None

    def _close(self):
        self._qid = None
        if self._sock:
            self._poller.unregister(self._sock)
            self._sock.close()
            self._sock = None

    def _retry(self, why):
        self._close()
        self._addr = None  # a pool's name may give another server next time
        wait = min(_RETRY_MAX_MS, 2000 << min(self._attempt, 5))
        self._attempt += 1
        self._next_try = ticks_add(ticks_ms(), wait)
        self.log("clock: %s from %s; again in %d s" % (why, self.server, wait // 1000))
