"""The broker's protocol logic, free of sockets.

``Broker`` holds sessions, subscriptions and retained messages and routes
messages between them. ``Client`` is one network connection's protocol state.
The transport layer (``server.py``) opens one with ``Broker.connection_made``
(passing what a TLS handshake established: PSK identity and key, certificate
name), then calls ``data_received``, ``pause_writing``/``resume_writing`` and
``connection_lost`` on it, and gives it a *link* to write to::

    link.write(data: bytes)    link.close()
    link.pause_reading()       link.resume_reading()

Time comes from ``Broker.tick`` (keepalive, stalled readers) and the injected
clock; ``Broker.auth_reloaded`` follows a reload of the auth files.

Everything a client sends is collected per connection and written once at the
end of each entry point (``Broker.flush``), so a burst of packets read in one
go costs one write per receiving connection.
"""

import time
import traceback
import uuid

from luxnode.mqtt import Decoder, ProtocolError, encoder, topics
from luxnode.mqtt.decoder import ZERO_COPY_PAYLOAD
from luxnode.mqtt.packets import (
    CONNECT, DISCONNECT, PINGREQ, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK_FAILURE,
    SUBSCRIBE, UNSUBSCRIBE, REFUSED_IDENTIFIER, REFUSED_NOT_AUTHORIZED, REFUSED_PROTOCOL_VERSION,
)

from luxnode.mosquitto.conf import ListenerConfig

from .auth import DecisionCache
from .retained import Retained
from .session import AWAIT_ACK, AWAIT_COMP, Session
from .subscriptions import SubscriptionIndex

# A connection that has not sent CONNECT by then is dropped.
CONNECT_TIMEOUT = 30.0
# A client we have data for that reads nothing for this long is dropped.
STALLED_TIMEOUT = 60.0
# Publishers are held (not read) while a connected subscriber's socket buffer is full
# or it has HOLD_QUEUE QoS 1/2 messages queued behind its in-flight window, so a fast
# publisher does not overrun a live subscriber. A hold lasts at most HOLD_LIMIT
# seconds, so one stuck reader cannot stall everyone: after that its queue takes the
# QoS 1/2 overflow and QoS 0 is dropped for it (as mosquitto does).
HOLD_QUEUE = 100
HOLD_LIMIT = 2.0
# mosquitto's defaults for a connection given no listener's settings.
DEFAULT_LISTENER = ListenerConfig(0)
# The ACL caches of a client that has made no decision yet: shared, never written (a
# client gets its own on its first decision), so an idle connection costs nothing for them.
_NO_DECISIONS = DecisionCache()


class Stats:
    __slots__ = ("messages_received", "messages_sent", "bytes_received", "bytes_sent",
                 "started")

    def __init__(self, now: float):
        self.messages_received = 0
        self.messages_sent = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.started = now


class Broker:
    def __init__(self, config, log, clock=time.monotonic, version: str = ""):
        self.config = config
        self.log = log
        self.clock = clock
        self.version = version
        self.sessions: dict[str, Session] = {}
        self.retained = Retained()
        self.index = SubscriptionIndex()
        self.clients: set[Client] = set()
        self.stats = Stats(clock())
        self.max_queued = config.max_queued_messages
        self.max_queued_bytes = config.max_queued_bytes
        self.max_inflight = config.max_inflight_messages or 1 << 30  # 0 = no limit
        self.max_inflight_bytes = config.max_inflight_bytes
        self.hold_mark = min(HOLD_QUEUE, max(1, self.max_queued // 2)) if self.max_queued else HOLD_QUEUE
        # Clients with bytes waiting to be written.
        self._dirty: list[Client] = []
        # Persistence: what changed since the last save. With ``save_before_write``
        # set (autosave_interval 0) it is saved before any acknowledgement leaves.
        self.changed_sessions: set[str] = set()
        self.changed_retained: set[str] = set()
        self.save_before_write = None

    # ---- entry points from the transport layer -------------------------------------

    def connection_made(self, link, auth, peer: str, psk_identity=None, cert_identity=None,
                        psk_key=None, listener: ListenerConfig = DEFAULT_LISTENER) -> "Client":
        """A new connection; the TLS handshake (if any) gave its identities and PSK key;
        ``listener`` holds the limits of the listener it came in on."""
        client = Client(self, link, auth, peer, psk_identity, cert_identity, psk_key, listener)
        self.clients.add(client)
        return client

    def tick(self) -> None:
        """Enforce keepalive (1.5x), the CONNECT timeout and stalled readers.

        Whatever fails for one client is logged with its traceback, that client is
        closed and the others are still checked (the timer itself is supervised too)."""
        now = self.clock()
        for client in list(self.clients):
            try:
                self._check(client, now)
            except Exception:
                self.failed(f"Housekeeping of client {client.name}")
                client.close(will=False)
        self.flush()

    def failed(self, what: str) -> None:
        """Log an unexpected exception (a bug, never the peer's doing) with its traceback."""
        self.log("error", f"{what} failed, continuing:\n{traceback.format_exc().rstrip()}")

    def _check(self, client: "Client", now: float) -> None:
        if client.session is None:
            if now - client.started > CONNECT_TIMEOUT:
                client.close(f"Client {client.peer} sent no CONNECT in {CONNECT_TIMEOUT:.0f} s, disconnecting.")
        elif client.write_paused_since and now - client.write_paused_since > STALLED_TIMEOUT:
            client.close(f"Client {client.client_id} is not reading its messages, disconnecting.")
        elif client.held and now - client.held_since > HOLD_LIMIT:
            # It is not catching up: its queue takes the QoS 1/2 overflow and
            # QoS 0 is dropped for it until it reads again.
            client.hold_exempt = True
            client.release_held()
        elif (client.keepalive and not client.reading_paused
                and now - client.last_received > client.keepalive * 1.5):
            client.close(f"Client {client.client_id} has exceeded timeout, disconnecting.")

    def flush(self) -> None:
        if self.save_before_write is not None and (self.changed_sessions or self.changed_retained):
            self.save_before_write()
        dirty = self._dirty
        if not dirty:
            return
        self._dirty = []
        sent = 0
        for client in dirty:
            out = client.out
            if not out:
                continue  # written already, ahead of a large payload (send_publish)
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            sent += len(data)
            if not client.closed:
                client.link.write(data)
        self.stats.bytes_sent += sent

    def auth_reloaded(self) -> None:
        """Auth files changed: cached ACL decisions are stale, and a connected client the
        files no longer let in (user removed, password changed, PSK key revoked or
        rotated) is disconnected with its will published. (mosquitto 2.0.11 drops a
        changed password too, but sends no will and keeps a rotated PSK key's client.)"""
        for client in list(self.clients):
            client.read_ok = client.write_ok = _NO_DECISIONS
            if client.session is None:
                continue  # not connected yet: its CONNECT meets the new files
            code, _ = client.authenticate()
            if code:
                self.log("notice", f"Client {client.client_id} disconnected, not authorised: the reloaded "
                                   f"auth files refuse it (CONNACK return code {code}).")
                client.close()
        self.flush()

    # ---- routing --------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool, source=None) -> None:
        """Store (if retained) and deliver one message to every matching session."""
        if retain:
            self.set_retained(topic, payload, qos)
        subscribers = self.index.match(topic)
        if not subscribers:
            return
        topic_bytes = topic.encode()
        qos0_packet = None
        large = len(payload) >= ZERO_COPY_PAYLOAD
        sent = 0
        dirty = self._dirty
        for session, granted in subscribers:
            client = session.client
            if client is not None and not client.may_read(topic):
                continue
            if qos and granted:
                self.send_or_queue(session, topic, topic_bytes, payload, min(qos, granted), False, source)
                continue
            if client is None:
                continue  # QoS 0 is not queued for offline sessions
            if client.write_paused_since:
                if client.hold_exempt:
                    self.dropped(session)  # stuck reader: the others must not wait for it
                    continue
                if source is not None:
                    client.hold(source)
            if large:
                client.send_publish(topic_bytes, payload)
                sent += 1
                continue
            if qos0_packet is None:
                qos0_packet = encoder.publish(topic_bytes, payload)
            out = client.out
            if not out:
                dirty.append(client)
            out.append(qos0_packet)
            sent += 1
        self.stats.messages_sent += sent

    def set_retained(self, topic: str, payload: bytes, qos: int) -> None:
        if payload:
            self.retained[topic] = (payload, qos)
        elif self.retained.pop(topic, None) is None:
            return
        if not topic.startswith("$SYS/"):
            self.changed_retained.add(topic)

    def send_or_queue(self, session: Session, topic: str, topic_bytes: bytes | None,
                      payload: bytes, qos: int, retain: bool, source=None) -> None:
        client = session.client
        if client is not None and not session.queue and self.inflight_room(session):
            packet_id = session.allocate_packet_id()
            session.inflight[packet_id] = [AWAIT_ACK, topic, payload, qos, retain]
            client.send_publish(topic_bytes or topic.encode(), payload, qos, retain, False, packet_id)
            self.stats.messages_sent += 1
        elif ((not self.max_queued or len(session.queue) < self.max_queued)
                and (not self.max_queued_bytes or session.queued_bytes < self.max_queued_bytes)):
            session.enqueue((topic, payload, qos, retain))
            if (client is not None and source is not None and not client.hold_exempt
                    and len(session.queue) >= self.hold_mark):
                client.hold(source)
        else:
            self.dropped(session)
            return
        self.session_changed(session)

    def dropped(self, session: Session) -> None:
        if not session.dropped:
            self.log("notice", f"Outgoing messages are being dropped for client {session.client_id}.")
        session.dropped += 1

    def fill_inflight(self, session: Session) -> None:
        """Move queued messages into flight while the client has room."""
        client = session.client
        queue = session.queue
        while queue and self.inflight_room(session):
            topic, payload, qos, retain = session.dequeue()
            if not client.may_read(topic):
                continue
            packet_id = session.allocate_packet_id()
            session.inflight[packet_id] = [AWAIT_ACK, topic, payload, qos, retain]
            client.send_publish(topic.encode(), payload, qos, retain, False, packet_id)
            self.stats.messages_sent += 1
        if not queue:
            session.dropped = 0
        if len(queue) < self.hold_mark // 2 + 1:
            client.hold_exempt = False
            if client.held and not client.write_paused_since:
                client.release_held()

    def inflight_room(self, session: Session) -> bool:
        """max_inflight_messages and max_inflight_bytes (as mosquitto: a message may
        start while the bytes in flight are below the limit)."""
        inflight = session.inflight
        return len(inflight) < self.max_inflight and (
            not self.max_inflight_bytes or sum(len(entry[2]) for entry in inflight.values()) < self.max_inflight_bytes)

    def session_changed(self, session: Session) -> None:
        if session.persistent:
            self.changed_sessions.add(session.client_id)

    def subscribe(self, session: Session, topic_filter: str, qos: int) -> None:
        session.subscriptions[topic_filter] = qos
        self.index.add(topic_filter, session, qos)
        self.session_changed(session)

    def drop_session(self, session: Session) -> None:
        for topic_filter in session.subscriptions:
            self.index.remove(topic_filter, session)
        session.subscriptions.clear()
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        if session.persistent:
            self.changed_sessions.add(session.client_id)

    def restore(self, retained: dict, sessions: list[Session]) -> None:
        """Load what persistence saved (before any client connects)."""
        self.retained.update(retained)
        for session in sessions:
            self.sessions[session.client_id] = session
            for topic_filter, qos in session.subscriptions.items():
                self.index.add(topic_filter, session, qos)

    # ---- $SYS -----------------------------------------------------------------------

    def publish_sys(self) -> None:
        """$SYS/broker/... (its timer in server.py is supervised)."""
        stats = self.stats
        connected = sum(1 for client in self.clients if client.session is not None)
        values = {
            "version": f"luxnode version {self.version}",
            "uptime": f"{int(self.clock() - stats.started)} seconds",
            "clients/connected": connected,
            "clients/total": len(self.sessions),
            "messages/received": stats.messages_received,
            "messages/sent": stats.messages_sent,
            "bytes/received": stats.bytes_received,
            "bytes/sent": stats.bytes_sent,
            "retained messages/count": len(self.retained),
            "subscriptions/count": self.index.count,
        }
        for leaf, value in values.items():
            self.publish(f"$SYS/broker/{leaf}", str(value).encode(), 0, True)
        self.flush()


class Client:
    """One connection: decodes its bytes, answers, and routes its messages."""

    __slots__ = ("broker", "link", "auth", "listener", "peer", "psk_identity", "cert_identity", "psk_key",
                 "decoder", "session", "client_id", "credentials", "username", "will", "keepalive",
                 "started", "last_received", "out", "closed", "reading_paused",
                 "write_paused_since", "held", "held_since", "hold_exempt", "read_ok", "write_ok")

    def __init__(self, broker: Broker, link, auth, peer: str, psk_identity, cert_identity, psk_key,
                 listener: ListenerConfig = DEFAULT_LISTENER):
        self.broker = broker
        self.link = link
        self.auth = auth
        self.listener = listener
        self.peer = peer
        self.psk_identity = psk_identity
        self.cert_identity = cert_identity
        self.psk_key = psk_key
        self.decoder = Decoder(server=True, max_payload=broker.config.message_size_limit,
                               max_packet=broker.config.max_packet_size, expect_connect=True)
        self.session: Session | None = None
        self.client_id = ""
        self.credentials: tuple = (None, None)  # CONNECT's username and password, checked again on reload
        self.username = None  # the one the client acts as (its TLS identity with use_identity_as_username)
        self.will = None
        self.keepalive = 0
        self.started = self.last_received = broker.clock()
        self.out: list[bytes] = []
        self.closed = False
        self.reading_paused = False
        self.write_paused_since = 0.0
        self.held: list[Client] = []  # publishers paused because this client is behind
        self.held_since = 0.0
        self.hold_exempt = False
        # ACL decisions per topic, until the auth files are reloaded or the client goes.
        self.read_ok = self.write_ok = _NO_DECISIONS

    @property
    def name(self) -> str:
        return self.client_id or self.peer

    # ---- entry points from the link -----------------------------------------------

    def data_received(self, data: bytes) -> None:
        broker = self.broker
        if self.closed:
            return
        self.last_received = broker.clock()
        broker.stats.bytes_received += len(data)
        error = None
        try:
            packets = self.decoder.feed(data)
        except ProtocolError as exc:
            packets, error = exc.packets, exc  # handle what came before the bad packet
        except Exception:  # a decoder bug: this connection goes, the broker's loop stays
            broker.failed(f"Decoding data from client {self.name} ({self.peer})")
            self.close(will=False)
            broker.flush()
            return
        if packets:  # the decoder made sure the first one is CONNECT
            try:
                for packet in packets:
                    _HANDLERS[packet.type](self, packet)
                    if self.closed:
                        break
            except Exception:  # a bug must cost this connection, never the broker's loop
                broker.failed(f"Handling a packet from client {self.name} ({self.peer})")
                self.close(will=False)
        if error is not None and not self.closed:
            self.close(f"Client {self.name} ({self.peer}) disconnected: malformed packet: {error}.",
                       kind="warning")
        broker.flush()

    def connection_lost(self) -> None:
        if not self.closed:
            self.close(f"Client {self.name} closed its connection.")
            self.broker.flush()

    def pause_writing(self) -> None:
        self.write_paused_since = self.broker.clock()

    def resume_writing(self) -> None:
        self.write_paused_since = 0.0
        self.hold_exempt = False
        if self.session is not None and not self.session.queue:
            self.session.dropped = 0
        self.release_held()

    # ---- helpers used by the broker ---------------------------------------------

    def send(self, data: bytes) -> None:
        if not self.out:
            self.broker._dirty.append(self)
        self.out.append(data)

    def send_publish(self, topic_bytes: bytes, payload: bytes, qos: int = 0, retain: bool = False,
                     dup: bool = False, packet_id: int = 0) -> None:
        if len(payload) < ZERO_COPY_PAYLOAD:
            self.send(encoder.publish(topic_bytes, payload, qos, retain, dup, packet_id))
            return
        # A large payload goes to the link as it is, not copied into one packet with its
        # header (100 MB: one copy less); what was waiting for this client goes first.
        out = self.out
        out.append(encoder.publish_header(topic_bytes, len(payload), qos, retain, dup, packet_id))
        data = b"".join(out)
        out.clear()
        self.broker.stats.bytes_sent += len(data) + len(payload)
        if not self.closed:
            self.link.write(data)
            self.link.write(payload)

    def hold(self, publisher: "Client") -> None:
        """Stop reading from ``publisher`` until this client has caught up."""
        if publisher is not self and not publisher.reading_paused and not publisher.closed:
            publisher.reading_paused = True
            publisher.link.pause_reading()
            if not self.held:
                self.held_since = self.broker.clock()
            self.held.append(publisher)

    def release_held(self) -> None:
        held, self.held = self.held, []
        self.held_since = 0.0
        now = self.broker.clock()
        for publisher in held:
            if publisher.reading_paused and not publisher.closed:
                publisher.reading_paused = False
                publisher.last_received = now  # its keepalive did not run while we held it
                publisher.link.resume_reading()

    def authenticate(self) -> tuple[int, str | None]:
        username, password = self.credentials
        return self.auth.authenticate(self.client_id, username, password, self.psk_identity,
                                      self.cert_identity, psk_key=self.psk_key)

    def may_read(self, topic: str) -> bool:
        cache = self.read_ok
        allowed = cache.get(topic)
        if allowed is None:
            if cache is _NO_DECISIONS:
                cache = self.read_ok = DecisionCache()
            allowed = cache.put(topic, self.auth.allowed(self.username, self.client_id, topic, "read"))
        return allowed

    def may_write(self, topic: str) -> bool:
        cache = self.write_ok
        allowed = cache.get(topic)
        if allowed is None:
            if cache is _NO_DECISIONS:
                cache = self.write_ok = DecisionCache()
            # As mosquitto: $SYS belongs to the broker whatever the ACL says
            # (bridges may report their connection state there).
            allowed = cache.put(topic, (
                (not topic.startswith("$SYS") or topics.matches("$SYS/broker/connection/+/state", topic))
                and self.auth.allowed(self.username, self.client_id, topic, "write")))
        return allowed

    def close(self, message: str | None = None, will: bool = True, kind: str = "notice") -> None:
        """Close the connection; publish the will unless the client said DISCONNECT."""
        if self.closed:
            return
        broker = self.broker
        self.closed = True
        broker.clients.discard(self)
        if message and (kind != "notice" or broker.config.connection_messages):
            broker.log(kind, message)
        if self.out:
            self.link.write(b"".join(self.out))
            self.out.clear()
        self.link.close()
        self.release_held()
        session = self.session
        if session is not None and session.client is self:
            session.client = None
            if not session.persistent:
                broker.drop_session(session)
        # As mosquitto, the will topic is checked against the ACL when it is sent.
        will, self.will = (self.will if will else None), None
        will_allowed = will is not None and self.may_write(will.topic)
        self.read_ok = self.write_ok = _NO_DECISIONS  # the caches go with the connection
        if will_allowed:
            broker.publish(will.topic, will.payload, will.qos, will.retain)

    # ---- packet handlers -----------------------------------------------------------

    def _refuse(self, code: int, reason: str) -> None:
        self.send(encoder.connack(False, code))
        self.close(f"Client {self.client_id or self.peer} ({self.peer}) refused: {reason}.", will=False)

    def _connect(self, packet) -> None:
        broker = self.broker
        if self.session is not None:
            self.close(f"Client {self.name} ({self.peer}) disconnected: protocol error: second CONNECT.",
                       kind="warning")
            return
        if not packet.supported:
            self._refuse(REFUSED_PROTOCOL_VERSION,
                         f"unsupported protocol {packet.protocol_name} level {packet.protocol_level}")
            return
        client_id = packet.client_id
        self.client_id = client_id
        if packet.protocol_level == 3 and not 1 <= len(client_id) <= 23:
            self._refuse(REFUSED_IDENTIFIER, "MQTT 3.1 client ids are 1 to 23 characters")
            return
        if not client_id:
            if not packet.clean_session:
                self._refuse(REFUSED_IDENTIFIER, "empty client id needs a clean session")
                return
            if not self.listener.allow_zero_length_clientid:
                self._refuse(REFUSED_IDENTIFIER, "empty client id and allow_zero_length_clientid false")
                return
            client_id = self.client_id = f"{self.listener.auto_id_prefix}{uuid.uuid4()}"
        if packet.keepalive > broker.config.max_keepalive:
            self._refuse(REFUSED_IDENTIFIER,
                         f"keepalive {packet.keepalive} s above max_keepalive {broker.config.max_keepalive}")
            return
        self.credentials = (packet.username, packet.password)
        code, username = self.authenticate()
        if code:
            self._refuse(code, f"CONNACK return code {code}")
            return
        if self.auth.username_as_client_id:
            # As mosquitto's use_username_as_clientid: no client can take another's id.
            if username is None:
                self._refuse(REFUSED_NOT_AUTHORIZED, "use_username_as_clientid needs a username")
                return
            client_id = self.client_id = username
        self.username = username
        old = broker.sessions.get(client_id)
        if old is not None and old.client is not None:
            old.client.close(f"Client {client_id} already connected, closing old connection.")
            old = broker.sessions.get(client_id)
        if old is not None and not packet.clean_session and not old.owned_by(username):
            # Its queued messages were meant for another identity: they go with it.
            broker.log("notice", f"Client {client_id} connected as another user than the one its session "
                                 f"belongs to: starting a fresh session.")
            broker.drop_session(old)
            old = None
        if old is not None and packet.clean_session:
            broker.drop_session(old)
            old = None
        session_present = old is not None
        session = old or Session(client_id, not packet.clean_session)
        if session.owner != username:  # new, or restored from a file that kept no owner: claimed
            session.owner = username
            broker.session_changed(session)  # the owner is saved with the session
        broker.sessions[client_id] = session
        session.client = self
        self.session = session
        self.will = packet.will
        self.keepalive = packet.keepalive
        self.send(encoder.connack(session_present, 0))
        if broker.config.connection_messages:
            user = f", u'{username}'" if username else ""
            broker.log("notice", f"New client connected from {self.peer} as {client_id} "
                                 f"(p{packet.protocol_level}, c{int(packet.clean_session)}, "
                                 f"k{packet.keepalive}{user}).")
        if session_present:
            self._resend_inflight(session)
        else:
            broker.session_changed(session)

    def _resend_inflight(self, session: Session) -> None:
        """A resumed session gets its unacknowledged messages again, DUP set, each one
        checked against the reader's ACL as it is now (mosquitto sends nothing denied)."""
        denied = []
        for packet_id, (state, topic, payload, qos, retain) in session.inflight.items():
            if state != AWAIT_ACK:
                self.send(encoder.pubrel(packet_id))
            elif self.may_read(topic):
                self.send_publish(topic.encode(), payload, qos, retain, True, packet_id)
            else:
                denied.append(packet_id)
        for packet_id in denied:
            del session.inflight[packet_id]
        if denied:
            self.broker.session_changed(session)
        self.broker.fill_inflight(session)

    def _publish(self, packet) -> None:
        broker = self.broker
        broker.stats.messages_received += 1
        qos = packet.qos
        if qos > self.listener.max_qos or (packet.retain and not broker.config.retain_available):
            # As mosquitto: what the listener does not offer ends the connection.
            limit = f"max_qos {self.listener.max_qos}" if qos > self.listener.max_qos else "retain_available false"
            self.close(f"Client {self.client_id} ({self.peer}) disconnected: PUBLISH beyond {limit}.",
                       kind="warning")
            return
        allowed = self.may_write(packet.topic)
        if not allowed and broker.log.enabled("debug"):
            broker.log("debug", f"Denied PUBLISH from {self.client_id} to {packet.topic!r}.")
        if qos == 0:
            if allowed:
                broker.publish(packet.topic, packet.payload, 0, packet.retain, self)
        elif qos == 1:
            if allowed:
                broker.publish(packet.topic, packet.payload, 1, packet.retain, self)
            self.send(encoder.puback(packet.packet_id))
        else:
            session = self.session
            if packet.packet_id not in session.incoming:
                if allowed:
                    broker.publish(packet.topic, packet.payload, 2, packet.retain, self)
                session.remember_incoming(packet.packet_id)
                broker.session_changed(session)
            self.send(encoder.pubrec(packet.packet_id))

    def _pubrel(self, packet) -> None:
        session = self.session
        if packet.packet_id in session.incoming:
            session.incoming.discard(packet.packet_id)
            self.broker.session_changed(session)
        self.send(encoder.pubcomp(packet.packet_id))

    def _ack_error(self, kind: str, packet_id: int, entry: list) -> None:
        """An acknowledgement that does not fit the message it names: mosquitto closes."""
        if entry[0] == AWAIT_COMP:
            state = "awaiting PUBCOMP"
        else:
            state = "awaiting PUBACK" if entry[3] == 1 else "awaiting PUBREC"
        self.close(f"Client {self.client_id} ({self.peer}) disconnected: protocol error: {kind} for packet id "
                   f"{packet_id}, a QoS {entry[3]} message {state}.", kind="warning")

    def _puback(self, packet) -> None:
        session = self.session
        entry = session.inflight.get(packet.packet_id)
        if entry is not None:
            if entry[3] != 1:
                self._ack_error("PUBACK", packet.packet_id, entry)
                return
            del session.inflight[packet.packet_id]
            self.broker.fill_inflight(session)
            self.broker.session_changed(session)

    def _pubrec(self, packet) -> None:
        session = self.session
        entry = session.inflight.get(packet.packet_id)
        if entry is not None:
            if entry[3] != 2:
                self._ack_error("PUBREC", packet.packet_id, entry)
                return
            entry[0] = AWAIT_COMP
            entry[2] = b""  # the payload is delivered; only the id is kept
            self.broker.session_changed(session)
        self.send(encoder.pubrel(packet.packet_id))

    def _pubcomp(self, packet) -> None:
        session = self.session
        entry = session.inflight.get(packet.packet_id)
        if entry is not None:
            if entry[0] != AWAIT_COMP:
                self._ack_error("PUBCOMP", packet.packet_id, entry)
                return
            del session.inflight[packet.packet_id]
            self.broker.fill_inflight(session)
            self.broker.session_changed(session)

    def _subscribe(self, packet) -> None:
        broker = self.broker
        session = self.session
        codes = []
        granted = []
        for topic_filter, qos in packet.topics:  # the decoder closed on malformed filters
            if not self.auth.allowed(self.username, self.client_id, topic_filter, "subscribe"):
                codes.append(SUBACK_FAILURE)
                broker.log("subscribe", f"{self.client_id} refused {topic_filter!r}: denied by the ACL")
                continue
            broker.subscribe(session, topic_filter, qos)
            codes.append(qos)
            granted.append((topic_filter, qos))
            broker.log("subscribe", f"{self.client_id} {qos} {topic_filter}")
        self.send(encoder.suback(packet.packet_id, codes))
        for topic_filter, qos in granted:
            self._send_retained(topic_filter, qos)

    def _send_retained(self, topic_filter: str, qos: int) -> None:
        broker = self.broker
        retained = broker.retained
        for topic in retained.match(topic_filter):
            payload, message_qos = retained[topic]
            if not self.may_read(topic):
                continue
            delivery_qos = min(qos, message_qos)
            if delivery_qos:
                broker.send_or_queue(self.session, topic, None, payload, delivery_qos, True)
            else:
                self.send_publish(topic.encode(), payload, 0, True)
                broker.stats.messages_sent += 1

    def _unsubscribe(self, packet) -> None:
        broker = self.broker
        session = self.session
        for topic_filter in packet.filters:
            if session.subscriptions.pop(topic_filter, None) is not None:
                broker.index.remove(topic_filter, session)
                broker.session_changed(session)
            broker.log("unsubscribe", f"{self.client_id} {topic_filter}")
        self.send(encoder.unsuback(packet.packet_id))

    def _pingreq(self, packet) -> None:
        self.send(encoder.PINGRESP_BYTES)

    def _disconnect(self, packet) -> None:
        self.will = None
        self.close(f"Client {self.client_id} disconnected.", will=False)


_HANDLERS = {
    CONNECT: Client._connect, PUBLISH: Client._publish, PUBACK: Client._puback,
    PUBREC: Client._pubrec, PUBREL: Client._pubrel, PUBCOMP: Client._pubcomp,
    SUBSCRIBE: Client._subscribe, UNSUBSCRIBE: Client._unsubscribe,
    PINGREQ: Client._pingreq, DISCONNECT: Client._disconnect,
}
