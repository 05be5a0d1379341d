# Connection set-up of lux.mqtt: resolve, non-blocking TCP connect, TLS
# handshake, CONNECT, what a CONNACK brings (subscriptions, QoS 1 still unacknowledged), and
# the hang-up when WiFi is lost. The client loads this while it connects, unloads it once connected.
import errno
import select
import socket
from time import ticks_diff, ticks_ms

from . import mqttpkt as P
from .mqtt import CONNECT_MS, DOWN, TCP, UP, WAIT

_REFUSED = ("", "bad protocol version", "client id rejected", "server unavailable",
            "bad username or password", "not authorised")


def dial(c):
    """Start a non-blocking TCP connect to the broker."""
    c.state = TCP
    c._since = ticks_ms()
    if c._addr is None:  # resolved once, again only after a failed connect
        c.log("mqtt: resolving %s" % c.host)
        c.feed()  # the lookup blocks until the DNS server answers or lwIP gives up
        c._addr = socket.getaddrinfo(c.host, c.port, 0, socket.SOCK_STREAM)[0][-1]
        c.feed()
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
    w = c.will or (None, None, False, 0)
    n = P.connect(c._tx, c.client_id, c.user, c.password, c.keepalive, c.clean, w[0], w[1], w[2], w[3])
    c._send(c._txmv[:n])
    c._last_rx = ticks_ms()
    c.state = WAIT
    c._since = c._last_rx


def connack(c, session_present, rc):
    if rc:
        raise P.ProtocolError("connection refused: " + (
            _REFUSED[rc] if rc < len(_REFUSED) else "code %d" % rc))
    c.state = UP
    c._attempt = 0
    c.connects += 1
    c._ping_at = None
    if not session_present:
        c._rx2 = []  # the broker forgot its half of any QoS 2 flow
    c.log("connected to %s:%d" % (c.host, c.port))
    for topic, qos in c._subs:
        c._send(c._txmv[:P.subscribe(c._tx, c._next_pid(), topic, qos)])
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
