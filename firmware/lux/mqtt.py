# MQTT 3.1.1 session over one socket. poll() drives everything: a non-blocking
# connect with exponential backoff (lux.mqttconn, loaded while connecting),
# reading into a preallocated buffer, acks, keepalive. Blocking is bounded: a
# TLS handshake by _CONNECT_MS, a write the socket cannot take by _SEND_MS (the
# ESP8266's watchdog fires after 1.6 s without a feed), and the writes sent without
# an answer by _HOLD segments (lwIP's queue of unacknowledged ones, below).
import errno
import random
import select
from time import ticks_add, ticks_diff, ticks_ms, sleep_ms

from micropython import const

from . import forget
from . import mqttpkt

_DOWN = const(0)  # waiting for the backoff timer
_TCP = const(1)  # TCP connect in progress
_WAIT = const(2)  # CONNECT sent, waiting for CONNACK
UP = const(3)  # connected: state == UP

_CONNACK = const(0x20)  # packet types (first byte); underscored const() costs no RAM
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_PUBREC = const(0x50)
_PUBREL = const(0x62)
_PUBCOMP = const(0x70)
_SUBACK = const(0x90)
_PINGRESP = const(0xD0)
_CONNECT_MS = const(5000)  # TCP connect, then TLS handshake: each within this
_CONNACK_MS = const(10000)
_SEND_MS = const(1000)  # a write that cannot go out in this time ends the connection
_READS_PER_POLL = const(16)  # then the loop gets its turn, even in a flood
_INFLIGHT_MAX = const(8)  # unacknowledged QoS 1 messages kept; the oldest goes first
_RX2_MAX = const(16)  # QoS 2 packet ids remembered until their PUBREL
# lwIP keeps each segment until the broker's TCP acknowledges it. On a dead path (the broker's
# host lost power, the uplink dropped) none is, and once the ESP8266's TCP_SND_QUEUELEN (8 pbufs:
# esp-open-lwip, TCP_MSS 536) are queued, even a non-blocking write retries for 10 s in modlwip,
# past the watchdog. Anything received proves the path (its segment acknowledges ours), so past
# _HOLD segments written since then the client sends a PINGREQ and writes nothing else: QoS 0 is
# dropped, QoS 1 waits in the inflight queue. _HOLD leaves room for a two-segment publish and
# that PINGREQ; no answer within _HOLD_MS (or half a keepalive, if shorter) ends the connection.
# What answers a packet just received (acks, a command's state or error) is not counted: the
# path was there a moment ago, and a burst of commands must not lose its answers.
_SEG = const(536)
_HOLD = const(6)
_HOLD_MS = const(10000)
_ANSWERING = const(-10000)  # the count while a received chunk is handled


def _b(s):
    return s.encode() if isinstance(s, str) else s


def _conn():
    from . import mqttconn

    return mqttconn


class MQTTClient:
    def __init__(self, client_id, host, port, user=None, password=None, keepalive=60,
                 clean=False, tls_ctx=None, server_hostname=None, will=None,
                 rx_buffer=512, tx_buffer=256, backoff_max_ms=30000, subs=(), on_message=None,
                 on_connect=None, log=print):
        """subs: (topic, qos) pairs, subscribed on every CONNACK."""
        self.client_id = _b(client_id)
        self.host = host
        self.port = port
        self.user = _b(user) if user else None
        self.password = _b(password) if password else None
        self.keepalive = keepalive
        self.clean = clean
        self.tls_ctx = tls_ctx
        self.server_hostname = server_hostname
        self.will = (_b(will[0]), _b(will[1]), will[2], will[3]) if will else None  # topic, message, retain, qos
        self.backoff_max_ms = backoff_max_ms
        self.on_message = on_message
        self.on_connect = on_connect
        self.log = log
        self.feed = lambda: None  # the watchdog's feed (Node.run), called before a call that may block
        self.reader = mqttpkt.Reader(rx_buffer)
        self._tx = bytearray(tx_buffer)
        self._txmv = memoryview(self._tx)
        self._subs = [(_b(t), q) for t, q in subs]
        self._inflight = []  # (pid, topic, msg, retain, sent) of unacknowledged QoS 1
        self._unanswered = 0  # segments written since anything was received (_HOLD)
        self._rx2 = []  # QoS 2 packet ids received, PUBREL not yet seen
        self._pid = 0
        self._addr = None
        self._dns = None  # the id of the DNS question while resolving (lux.dns)
        self._sock = None
        self._poller = select.poll()
        self.state = _DOWN
        self._attempt = 0
        self._next_try = ticks_ms()
        self._since = 0
        self._last_tx = 0
        self._last_rx = 0
        self._ping_at = None
        self.connects = 0

    # -- application side --

    def publish(self, topic, msg, retain=False, qos=0):
        """QoS 0 is dropped while offline or held (_HOLD); QoS 1 is kept (bounded) until
        acknowledged, sent when the connection can take it, and again after a reconnect (with
        DUP if it went out before)."""
        topic, msg = _b(topic), _b(msg)
        if qos:
            if retain:  # a newer retained message supersedes one still unacknowledged
                for i, m in enumerate(self._inflight):
                    if m[3] and m[1] == topic:
                        self._inflight.pop(i)
                        break
            pid = self._next_pid()
            if len(self._inflight) >= _INFLIGHT_MAX:
                self.log("mqtt: inflight full, dropping message %d" % self._inflight.pop(0)[0])
            self._inflight.append((pid, topic, msg, retain, False))  # sent: DUP when again
        elif self.state != UP:
            return False
        if self.state == UP:
            try:
                if self._flush():  # QoS 1 went out with the others; or waits, held
                    if not qos:
                        self._send_pub(topic, msg, 0, retain, False, 0)
                elif not qos:
                    return False  # held: dropped
            except Exception as e:
                self._fail(e)
                return False
        return True

    def poll(self, timeout_ms=0):
        """Run the session; waits at most timeout_ms for incoming data."""
        try:
            if self.state == _DOWN:
                if ticks_diff(ticks_ms(), self._next_try) >= 0:
                    _conn().dial(self)
                elif timeout_ms:
                    sleep_ms(timeout_ms)
                return
            if self.state == _TCP:
                _conn().handshake(self, timeout_ms)
                return
            if timeout_ms:
                for _ in self._poller.ipoll(timeout_ms):
                    break
            self._read()
            self._timers(ticks_ms())
        except Exception as e:  # any socket or protocol failure ends this connection
            self._fail(e)

    # -- connection --

    def _close(self):
        if self._sock:
            try:
                self._poller.unregister(self._sock)
            except (OSError, ValueError, KeyError):
                pass
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._ping_at = None
        self._unanswered = 0

    def _fail(self, why):
        if self.state != UP:
            self._addr = None  # the address may have moved: resolve again
        was_up = self.state == UP
        self._close()
        self.state = _DOWN
        d = min(self.backoff_max_ms, 1000 << min(self._attempt, 16))
        self._attempt += 1
        wait = d - random.getrandbits(16) % (d // 4 + 1)
        self._next_try = ticks_add(ticks_ms(), wait)
        self.log("mqtt error: %s%s; retry in %d ms" % (
            "connection lost: " if was_up else "", " ".join(str(why).split()), wait))

    # -- wire --

    def _flush(self):
        """Writes the QoS 1 messages not yet written on this connection, oldest first, while it
        has room (_HOLD); says whether room is left. Without it, the PINGREQ that asks whether
        the broker is still there goes out, once."""
        for i, m in enumerate(self._inflight):
            if not m[4] and self._unanswered < _HOLD:
                self._inflight[i] = m[:4] + (True,)
                self._send_pub(m[1], m[2], 1, m[3], False, m[0])
        if self._unanswered < _HOLD:
            return True
        if self._ping_at is None:
            self._send(b"\xc0\x00")  # PINGREQ
            self._ping_at = ticks_ms()
        return False

    def _send(self, data):
        if self._sock is None:
            raise OSError(errno.ENOTCONN)
        mv = memoryview(data)
        n = 0
        self.feed()
        deadline = ticks_add(ticks_ms(), _SEND_MS)
        while n < len(mv):
            k = self._sock.write(mv[n:])
            if k:
                n += k
                self._unanswered += (k + _SEG - 1) // _SEG  # lwIP's pbufs for it
            elif ticks_diff(ticks_ms(), deadline) > 0:
                raise OSError(errno.ETIMEDOUT)
            else:
                sleep_ms(2)
        self._last_tx = ticks_ms()

    def _send_pub(self, topic, msg, qos, retain, dup, pid):
        tx = self._tx
        h = mqttpkt.publish_head(tx, topic, len(msg), qos, retain, dup, pid)
        end = h + len(msg)
        if end <= len(tx):
            tx[h:end] = msg
            self._send(self._txmv[:end])
        else:
            self._send(self._txmv[:h])
            self._send(msg)

    def _send_ack(self, kind, pid):
        self._send(self._txmv[:mqttpkt.ack(self._tx, kind, pid)])

    def _next_pid(self):
        while True:
            self._pid = self._pid % 65535 + 1
            for m in self._inflight:
                if m[0] == self._pid:
                    break
            else:
                return self._pid

    def _read(self):
        r, s = self.reader, self._sock
        if s is None:
            return
        for _ in range(_READS_PER_POLL):
            try:
                k = s.readinto(r.space())
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    return
                raise
            if k is None:
                return
            if not k:
                raise OSError("closed by broker")
            self._last_rx = ticks_ms()
            self._unanswered = _ANSWERING
            r.got(k)
            r.parse(self._handle)
            self._unanswered = 0
            if self.state == _DOWN:
                return

    def _timers(self, now):
        if self.state != UP:  # waiting for CONNACK, or the read just ended the connection
            if self.state == _WAIT and ticks_diff(now, self._since) > _CONNACK_MS:
                raise OSError("no CONNACK")
            return
        half = self.keepalive * 500
        held = self._unanswered >= _HOLD
        wait = _HOLD_MS if held and not 0 < half < _HOLD_MS else half
        if wait and self._ping_at is not None and ticks_diff(now, self._ping_at) >= wait \
                and ticks_diff(now, self._last_rx) >= wait:
            raise OSError("no PINGRESP within keepalive" if wait == half else "no PINGRESP, writes held")
        # PINGREQ half a keepalive after the last packet sent, whatever arrives;
        # also probe a broker that has been silent that long. Held: only the one (_flush).
        if half and (ticks_diff(now, self._last_tx) >= half or (
                self._ping_at is None and ticks_diff(now, self._last_rx) >= half)) and not (
                held and self._ping_at is not None):
            self._send(b"\xc0\x00")  # PINGREQ
            if self._ping_at is None:
                self._ping_at = now
        self._flush()  # QoS 1 held back, once something has come in

    def _handle(self, first, body, rem):
        kind = first & 0xF0
        if kind == _PUBLISH:
            self._on_publish(first, body, rem)
        elif kind == _PUBACK:
            pid = mqttpkt.u16(body, 0)
            for i, m in enumerate(self._inflight):
                if m[0] == pid:
                    self._inflight.pop(i)
                    break
        elif first == _PUBREL:
            pid = mqttpkt.u16(body, 0)
            if pid in self._rx2:
                self._rx2.remove(pid)
            self._send_ack(_PUBCOMP, pid)
        elif kind == _PINGRESP:
            self._ping_at = None
        elif kind == _SUBACK:
            for i in range(2, len(body)):
                if body[i] & 0x80:
                    self.log("mqtt: subscription refused by the broker")
        elif kind == _CONNACK and self.state == _WAIT:
            _conn().connack(self, body[0] & 1, body[1])
            forget("mqttconn")
            forget("dns")
        elif kind == _PUBREC:  # we publish at most QoS 1; complete the flow anyway
            self._send_ack(_PUBREL, mqttpkt.u16(body, 0))
        elif kind != _PUBCOMP:
            raise mqttpkt.ProtocolError("unexpected packet 0x%02x" % first)

    def _on_publish(self, first, body, rem):
        qos = first >> 1 & 3
        tl = mqttpkt.u16(body, 0)
        p = 2 + tl
        pid = mqttpkt.u16(body, p) if qos and len(body) >= p + 2 else 0
        if qos:
            p += 2
        fresh = True
        if qos == 2 and pid:
            if pid in self._rx2:
                fresh = False  # a retransmission: delivered already
            else:
                if len(self._rx2) >= _RX2_MAX:
                    self._rx2.pop(0)
                self._rx2.append(pid)
        if fresh and self.on_message:
            try:
                self.on_message(body[2:p - 2 if qos else p], body[p:], rem - p)
            except Exception as e:  # one message must not cost the connection: acknowledged all the same
                self.log("mqtt: message dropped: %r" % e)
        if pid:
            self._send_ack(_PUBACK if qos == 1 else _PUBREC, pid)
