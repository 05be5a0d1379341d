# Connection set-up of lux.mqtt: resolve (lux.dns), non-blocking TCP connect, TLS
# handshake, CONNECT, what a CONNACK brings (subscriptions, QoS 1 still unacknowledged), and
# the hang-up when WiFi is lost. The client loads this while it connects, unloads it once connected.
import errno
import select
import socket
from time import ticks_diff, ticks_ms

from . import mqttpkt
from .mqtt import CONNECT_MS, DOWN, TCP, UP, WAIT

_REFUSED = ("", "bad protocol version", "client id rejected", "server unavailable",
            "bad username or password", "not authorised")


def dial(c):
    """Start resolving the broker's name (lux.dns), or the TCP connect if its address is known."""
    c.state = TCP
    c._since = ticks_ms()
    c._dns = None
    if c._addr is None:  # resolved once, again only after a failed connect
        from . import dns

        c.log("mqtt: resolving %s" % c.host)
        server = None if dns.numeric(c.host) else dns.server()
        if server:
            c._sock, c._dns = dns.ask(c.host, server)
            c._poller.register(c._sock, select.POLLIN)
            return
        _lookup(c)
    _connect(c)


def _lookup(c):
    """The port's getaddrinfo: at once for an address; for a name it blocks until the DNS
    server answers, so only where no DNS server is known."""
    c.feed()
    c._addr = socket.getaddrinfo(c.host, c.port, 0, socket.SOCK_STREAM)[0][-1]
    c.feed()


def _resolving(c, timeout_ms):
    from . import dns

    for _ in c._poller.ipoll(timeout_ms):
        break
    try:
        ip = dns.address(c._sock.recv(512), c._dns, c.host)
    except OSError as e:
        if e.errno == errno.ECONNREFUSED:  # no DNS server there after all (a host's loopback)
            c._close()
            c._dns = None
            _lookup(c)
            _connect(c)
            return
        if e.errno != errno.EAGAIN:
            raise
        ip = None
    if ip is None:
        if ticks_diff(ticks_ms(), c._since) > CONNECT_MS:
            raise OSError("no DNS answer for %s" % c.host)
        return
    c._close()
    c._dns = None
    c._addr = socket.getaddrinfo(ip, c.port)[0][-1]  # an address: no lookup
    c.log("mqtt: %s is %s" % (c.host, ip))
    _connect(c)


def _connect(c):
    c._since = ticks_ms()
    c.log("mqtt: connecting to %s:%d" % (c.host, c.port))
    s = socket.socket()
    c._sock = s
    nodelay = getattr(socket, "TCP_NODELAY", None)  # the unix port has none
    if nodelay is not None:  # an ack and the publish after it leave at once
        s.setsockopt(socket.IPPROTO_TCP, nodelay, 1)
    s.setblocking(False)
    try:
        s.connect(c._addr)
    except OSError as e:
        if e.errno != errno.EINPROGRESS:
            raise
    c._poller.register(s, select.POLLOUT)


def handshake(c, timeout_ms):
    """Once TCP is up: TLS (blocking, bounded by the connect timeout), then CONNECT."""
    if c._dns is not None:
        _resolving(c, timeout_ms)
        return
    ev = 0
    for _, ev in c._poller.ipoll(timeout_ms):
        break
    if ev & (select.POLLERR | select.POLLHUP):
        raise OSError(errno.ECONNREFUSED)
    if not ev:
        if ticks_diff(ticks_ms(), c._since) > CONNECT_MS:
            raise OSError(errno.ETIMEDOUT)
        return
    s = c._sock
    c._poller.unregister(s)
    if c.tls_ctx:
        s.setblocking(True)
        s.settimeout(CONNECT_MS / 1000)
        if c.server_hostname:
            s = c.tls_ctx.wrap_socket(s, server_hostname=c.server_hostname)
        else:
            s = c.tls_ctx.wrap_socket(s)
        c._sock = s
        s.setblocking(False)
    c._poller.register(s, select.POLLIN)
    c.reader.reset()
    n = mqttpkt.connect(c._tx, c.client_id, c.user, c.password, c.keepalive, c.clean, c.will)
    c._send(c._txmv[:n])
    c._last_rx = ticks_ms()
    c.state = WAIT
    c._since = c._last_rx


def connack(c, session_present, rc):
    if rc:
        raise mqttpkt.ProtocolError("connection refused: " + (
            _REFUSED[rc] if rc < len(_REFUSED) else "code %d" % rc))
    c.state = UP
    c._attempt = 0
    c.connects += 1
    c._ping_at = None
    if not session_present:
        c._rx2 = []  # the broker forgot its half of any QoS 2 flow
    c.log("connected to %s:%d" % (c.host, c.port))
    for topic, qos in c._subs:
        c._send(c._txmv[:mqttpkt.subscribe(c._tx, c._next_pid(), topic, qos)])
    for i, (pid, topic, msg, retain, sent) in enumerate(c._inflight):
        c._inflight[i] = (pid, topic, msg, retain, True)
        c._send_pub(topic, msg, 1, retain, sent, pid)  # DUP only on a second attempt
    if c.on_connect:
        c.on_connect()


def hangup(c):
    """Close when the WiFi link is gone. No DISCONNECT: it could not leave, or if it
    did, the broker would drop the last will ("offline"), which is now the truth.
    The next connect is due at once (any old retry time may lie 6 days back)."""
    c._close()
    c.state = DOWN
    c._next_try = ticks_ms()
