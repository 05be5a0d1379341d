# Connection set-up of lux.mqtt: resolve (lux.dns), non-blocking TCP connect, TLS
# handshake, CONNECT, what a CONNACK brings (subscriptions, QoS 1 still unacknowledged), and
# the hang-up when WiFi is lost. The client loads this while it connects, unloads it once connected.
# Each function is a method of MQTTClient kept out of its class: self is the client.
import errno
import select
import socket
from time import ticks_diff, ticks_ms

from micropython import const

from . import mqttpkt
from .mqtt import UP

# lux.mqtt's states and connect timeout, as it defines them (underscored const()s are folded
# in and cost the heap nothing; tests/firmware/test_codec.py keeps the two files equal).
_DOWN = const(0)
_TCP = const(1)
_WAIT = const(2)
_CONNECT_MS = const(5000)

_REFUSED = ("", "bad protocol version", "client id rejected", "server unavailable",
            "bad username or password", "not authorised")


def dial(self):
    """Start resolving the broker's name (lux.dns), or the TCP connect if its address is known."""
    self.state = _TCP
    self._since = ticks_ms()
    self._dns = None
    if self._addr is None:  # resolved once, again only after a failed connect
        from . import dns

        self.log("mqtt: resolving %s" % self.host)
        server = None if dns.numeric(self.host) else dns.server(self.host)
        if server:
            self._sock, self._dns = dns.ask(self.host, server)
            self._poller.register(self._sock, select.POLLIN)
            return
        _lookup(self)
    _connect(self)


def _lookup(self):
    """The port's getaddrinfo: at once for an address; for a name it blocks until the DNS
    server answers, so only where no DNS server is known."""
    self.feed()
    self._addr = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)[0][-1]
    self.feed()


def _resolving(self, timeout_ms):
    from . import dns

    for _ in self._poller.ipoll(timeout_ms):
        break
    try:
        ip = dns.address(self._sock.recv(512), self._dns, self.host)
    except OSError as e:
        if e.errno == errno.ECONNREFUSED:  # no DNS server there after all (a host's loopback)
            self._close()
            self._dns = None
            _lookup(self)
            _connect(self)
            return
        if e.errno != errno.EAGAIN:
            raise
        ip = None
    if ip is None:
        if ticks_diff(ticks_ms(), self._since) > _CONNECT_MS:
            raise OSError("no DNS answer for %s" % self.host)
        return
    self._close()
    self._dns = None
    self._addr = socket.getaddrinfo(ip, self.port)[0][-1]  # an address: no lookup
    self.log("mqtt: %s is %s" % (self.host, ip))
    _connect(self)


def _connect(self):
    self._since = ticks_ms()
    self.log("mqtt: connecting to %s:%d" % (self.host, self.port))
    s = socket.socket()
    self._sock = s
    nodelay = getattr(socket, "TCP_NODELAY", None)  # the unix port has none
    # An ack and the publish after it leave at once; not where the socket is modlwip's (its
    # TCP_NODELAY is lwIP's TF_NODELAY, 0x40: the ESP8266), whose Nagle lets small writes share a
    # pbuf while one is unacknowledged: on a dead path its send buffer (1072 bytes) then fills,
    # EAGAIN, before its 8 pbufs do (modlwip's 10 s ERR_MEM loop even when non-blocking: a reset).
    if nodelay is not None and nodelay != 0x40:
        s.setsockopt(socket.IPPROTO_TCP, nodelay, 1)
    s.setblocking(False)
    try:
        s.connect(self._addr)
    except OSError as e:
        if e.errno != errno.EINPROGRESS:
            raise
    self._poller.register(s, select.POLLOUT)


def handshake(self, timeout_ms):
    """Once TCP is up: TLS (blocking, bounded by the connect timeout), then CONNECT."""
    if self._dns is not None:
        _resolving(self, timeout_ms)
        return
    ev = 0
    for _, ev in self._poller.ipoll(timeout_ms):
        break
    if ev & (select.POLLERR | select.POLLHUP):
        raise OSError(errno.ECONNREFUSED)
    if not ev:
        if ticks_diff(ticks_ms(), self._since) > _CONNECT_MS:
            raise OSError(errno.ETIMEDOUT)
        return
    s = self._sock
    self._poller.unregister(s)
    if self.tls_ctx:
        s.setblocking(True)
        s.settimeout(_CONNECT_MS / 1000)
        if self.server_hostname:
            s = self.tls_ctx.wrap_socket(s, server_hostname=self.server_hostname)
        else:
            s = self.tls_ctx.wrap_socket(s)
        self._sock = s
        s.setblocking(False)
    self._poller.register(s, select.POLLIN)
    self.reader.reset()
    n = mqttpkt.connect(self._tx, self.client_id, self.user, self.password, self.keepalive, self.clean, self.will)
    self._send(self._txmv[:n])
    self._last_rx = ticks_ms()
    self.state = _WAIT
    self._since = self._last_rx


def connack(self, session_present, rc):
    if rc:
        raise mqttpkt.ProtocolError("connection refused: " + (
            _REFUSED[rc] if rc < len(_REFUSED) else "code %d" % rc))
    self.state = UP
    self._attempt = 0
    self.connects += 1
    self._ping_at = None
    if not session_present:
        self._rx2 = []  # the broker forgot its half of any QoS 2 flow
    self.log("connected to %s:%d" % (self.host, self.port))
    for topic, qos in self._subs:
        self._send(self._txmv[:mqttpkt.subscribe(self._tx, self._next_pid(), topic, qos)])
    for i, (pid, topic, msg, retain, sent) in enumerate(self._inflight):
        self._inflight[i] = (pid, topic, msg, retain, True)
        self._send_pub(topic, msg, 1, retain, sent, pid)  # DUP only on a second attempt
    if self.on_connect:
        self.on_connect()


def hangup(self):
    """Close when the WiFi link is gone. No DISCONNECT: it could not leave, or if it
    did, the broker would drop the last will ("offline"), which is now the truth.
    The next connect is due at once (any old retry time may lie 6 days back)."""
    self._close()
    self.state = _DOWN
    self._next_try = ticks_ms()
