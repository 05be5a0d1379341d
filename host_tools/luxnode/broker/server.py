"""Sockets, TLS, WebSockets, timers and storage around the protocol core.

``Server(config)`` is the whole broker: ``await server.start()`` binds every
listener (port 0 picks a free one; ``server.ports`` lists the bound ports in
listener order), ``await server.stop()`` closes them and saves. ``reload()``
re-reads the auth files of every listener (SIGHUP) and disconnects the clients
they no longer let in.
"""

import asyncio
import os
import socket
import sqlite3
import time
from pathlib import Path

from luxnode import __version__
from luxnode.errors import LuxnodeError

from . import interfaces
from .auth import Auth
from .core import Broker
from .log import Log
from .store import SaveError, Store, StoreDamaged

TICK_S = 0.25             # keepalive resolution
SAVE_RETRY_S = 1.0       # while saving fails, unsaved changes are retried this often
EXPIRY_SCAN_S = 60.0     # persistent_client_expiration is counted in hours at least
TLS_HANDSHAKE_S = 20.0   # a TLS client must finish its handshake by then
WRITE_BUFFER_HIGH = 1 << 20  # bytes buffered for a client before its publishers are held
WEBSOCKET_MAX_MESSAGE = (1 << 28) + 5  # the largest MQTT packet; MQTT keepalive replaces WS pings
FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6, None: socket.AF_UNSPEC}


class _Gate:
    """max_connections of one listener: sockets open on it, counted from accept."""

    __slots__ = ("limit", "open", "port", "log")

    def __init__(self, limit: int, log: Log):
        self.limit = limit  # -1 or 0: no limit (as mosquitto 2.0.11)
        self.open = 0
        self.port = 0
        self.log = log

    def enter(self, peer: str) -> bool:
        if 0 < self.limit <= self.open:
            self.log("notice", f"Client connection from {peer} denied: max_connections "
                               f"({self.limit}) exceeded on port {self.port}.")
            return False
        self.open += 1
        return True

    def leave(self) -> None:
        self.open -= 1


class Server:
    def __init__(self, config, *, log: Log | None = None, clock=time.monotonic):
        self.config = config
        self.log = log or Log(config.log_types)
        self.broker = Broker(config, self.log, clock=clock, version=__version__)
        self.auths: list = []
        self.ports: list[int] = []
        self._servers: list = []
        self._tasks: list[asyncio.Task] = []
        self.store: Store | None = None
        self.save_failing_since = 0.0  # monotonic time of the first failure of this episode; 0: saving works
        self._next_save_retry = 0.0
        self._offline_since: dict[str, float] = {}  # persistent sessions seen without a client
        self._stopped = asyncio.Event()

    # ---- lifecycle --------------------------------------------------------------

    async def start(self) -> "Server":
        config = self.config
        if config.persistence:
            self._open_store()
        try:
            for listener in config.listeners:
                auth = Auth(listener, config.clientid_prefixes)
                self.auths.append(auth)
                self.ports.append(await self._listen(listener, auth))
        except BaseException:
            await self.stop()
            raise
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._every("Housekeeping", TICK_S, self.broker.tick)))
        if config.sys_interval > 0:
            self._tasks.append(loop.create_task(
                self._every("Publishing $SYS", config.sys_interval, self.broker.publish_sys, now=True)))
        if self.store is not None and config.autosave_interval > 0:
            self._tasks.append(loop.create_task(self._every("Autosave", config.autosave_interval, self.save)))
        if self.store is not None:
            self._tasks.append(loop.create_task(self._every("Retrying the save", SAVE_RETRY_S, self._retry_save)))
        if config.persistent_client_expiration:
            self._tasks.append(loop.create_task(
                self._every("Expiring persistent sessions", EXPIRY_SCAN_S, self.expire_sessions, now=True)))
        if config.pid_file:
            Path(config.pid_file).write_text(f"{os.getpid()}\n")
        self.log("notice", f"luxnode broker version {__version__} running")
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        for server in self._servers:
            server.close()
        for client in list(self.broker.clients):
            client.close(will=False)
        self.broker.flush()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self.store is not None:
            self.save(force=True)
            if self.save_failing_since:
                unsaved = len(self.broker.changed_retained) + len(self.broker.changed_sessions)
                self.log("error", f"Stopping with {unsaved} retained topics and sessions not saved to "
                                  f"{self.store.path}: saving still fails.")
            self.store.close()
            self.store = None
        if self.config.pid_file:
            try:
                Path(self.config.pid_file).unlink(missing_ok=True)
            except OSError as exc:  # after switching `user`, its folder may be root's
                self.log("warning", f"Cannot remove the pid file {self.config.pid_file}: {exc.strerror}.")
        self._stopped.set()
        self.log("notice", "luxnode broker terminated")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def reload(self) -> None:
        """SIGHUP: every listener re-reads its password, ACL and PSK files; connected
        clients are checked again against them."""
        self.log("notice", "Reloading authentication files.")
        for auth in self.auths:
            auth.reload()
            if auth.last_reload_error:
                self.log("error", f"Reload failed, keeping the previous auth files: {auth.last_reload_error}")
        self.broker.auth_reloaded()

    def expire_sessions(self) -> None:
        """persistent_client_expiration: drop persistent sessions unused that long. Offline
        time counts from the first scan that saw the session without a client (at most
        EXPIRY_SCAN_S late; after a restart, from the restart)."""
        broker = self.broker
        now = broker.clock()
        expiration = self.config.persistent_client_expiration
        offline = self._offline_since
        for client_id in set(offline) - set(broker.sessions):
            del offline[client_id]
        for client_id, session in list(broker.sessions.items()):
            if session.client is not None:
                offline.pop(client_id, None)
            elif now - offline.setdefault(client_id, now) >= expiration:
                del offline[client_id]
                broker.drop_session(session)
                self.log("notice", f"Expiring client {client_id} due to timeout.")
        broker.flush()

    # ---- persistence -----------------------------------------------------------

    def _open_store(self) -> None:
        config = self.config
        path = Path(config.persistence_location or ".") / config.persistence_file
        store = None
        try:
            store = Store(path)
            retained, sessions = store.load()
        except StoreDamaged as exc:
            raise LuxnodeError(str(exc)) from None
        except (OSError, sqlite3.Error) as exc:
            if store is not None:
                store.close()
            raise LuxnodeError(f"cannot use persistence file {path}: {exc}; "
                               "fix its permissions or move it away to start with an empty store") from None
        self.store = store
        self.broker.restore(retained, sessions)
        self.log("notice", f"Restored {len(retained)} retained messages and {len(sessions)} sessions "
                           f"from {self.store.path}.")
        if config.autosave_interval == 0:
            self.broker.save_before_write = self.save

    def save(self, force: bool = False) -> None:
        """Write what changed. If that fails the changes stay marked and are retried every
        SAVE_RETRY_S until saved; the reason is logged once per episode, not per message."""
        broker = self.broker
        if self.store is None or not (broker.changed_retained or broker.changed_sessions):
            return
        now = time.monotonic()
        if self.save_failing_since and not force and now < self._next_save_retry:
            return  # a full disk is not hammered on every message
        changed_retained, changed_sessions = broker.changed_retained, broker.changed_sessions
        retained = {topic: broker.retained.get(topic) for topic in changed_retained}
        sessions = {}
        for client_id in changed_sessions:
            session = broker.sessions.get(client_id)
            sessions[client_id] = session if session is not None and session.persistent else None
        broker.changed_retained = set()
        broker.changed_sessions = set()
        try:
            self.store.save(retained, sessions)
        except SaveError as exc:  # a full disk must not take the broker down
            broker.changed_retained |= changed_retained  # saved as they are when the retry comes
            broker.changed_sessions |= changed_sessions
            self._next_save_retry = now + SAVE_RETRY_S
            if not self.save_failing_since:
                self.save_failing_since = now
                self.log("error", f"Saving to {self.store.path} failed: {exc}; retrying every "
                                  f"{SAVE_RETRY_S:.0f} s until it works (changes are kept in memory until then).")
            return
        if self.save_failing_since:
            self.log("notice", f"Saving to {self.store.path} works again after "
                               f"{now - self.save_failing_since:.0f} s; the unsaved changes are written.")
            self.save_failing_since = 0.0

    def _retry_save(self) -> None:
        if self.save_failing_since:
            self.save()

    # ---- listeners ---------------------------------------------------------------

    async def _listen(self, listener, auth) -> int:
        context = None
        if listener.tls:
            from .tls import server_context
            context = server_context(listener, auth, log=self.log)
            if context is None:
                raise LuxnodeError(f"listener {listener.port}: TLS is configured but no TLS context could be made")
        family = FAMILIES[listener.socket_domain]
        host = listener.address
        if listener.bind_interface:  # as mosquitto: takes priority over the listener's address
            try:
                host = interfaces.addresses(listener.bind_interface, family)
            except LuxnodeError as exc:
                raise LuxnodeError(f"listener {listener.port}: {exc}") from None
        gate = _Gate(listener.max_connections, self.log)
        try:
            if listener.protocol == "websockets":
                from websockets.asyncio.server import serve
                server = await serve(lambda ws: self._websocket(ws, auth, gate), host, listener.port, family=family,
                                     subprotocols=["mqtt", "mqttv3.1"], ssl=context, compression=None,
                                     max_size=WEBSOCKET_MAX_MESSAGE, ping_interval=None)
                kind = "websockets"
            else:
                loop = asyncio.get_running_loop()
                if context is None:
                    factory = lambda: _StreamLink(self.broker, auth, gate)  # noqa: E731
                else:
                    factory = lambda: _TlsAcceptor(self.broker, auth, gate, context, self.log)  # noqa: E731
                server = await loop.create_server(factory, host, listener.port, family=family, reuse_address=True)
                kind = "tls" if context else "mqtt"
        except OSError as exc:
            where = ", ".join(host) if isinstance(host, list) else host or "*"
            raise LuxnodeError(f"cannot listen on {where}:{listener.port}: {exc.strerror or exc}; "
                               "is another broker running? choose another port") from None
        self._servers.append(server)
        port = gate.port = server.sockets[0].getsockname()[1]
        for sock in server.sockets:
            address = sock.getsockname()[0]
            self.log("notice", f"Opening {kind} listen socket on {address} port {port}.")
        return port

    async def _websocket(self, ws, auth, gate) -> None:
        peer = _peer(ws.remote_address)
        if not gate.enter(peer):
            await ws.close(1013, "max_connections exceeded")
            return
        try:
            await self._websocket_client(ws, auth, peer)
        finally:
            gate.leave()

    async def _websocket_client(self, ws, auth, peer: str) -> None:
        link = _WebSocketLink(ws)
        ssl_object = ws.transport.get_extra_info("ssl_object")
        client = link.client = self.broker.connection_made(link, auth, peer, *_identities(ssl_object),
                                                           listener=auth.listener)
        self.log("websockets", f"New WebSocket connection from {peer}.")
        writer = asyncio.get_running_loop().create_task(link.write_loop())
        try:
            async for message in ws:
                if isinstance(message, str):
                    client.close(f"Client {client.name} ({peer}) disconnected: MQTT needs binary WebSocket frames.",
                                 kind="warning")
                    break
                client.data_received(message)
                if link.reading_paused:
                    await link.resume.wait()
        except Exception:  # the peer went away mid-frame; the client is closed below
            pass
        finally:
            client.connection_lost()
            await writer

    async def _every(self, what: str, interval: float, action, now: bool = False) -> None:
        """Run ``action`` every ``interval`` seconds (first at once with ``now``), supervised:
        an exception is logged with its traceback and the next run still comes."""
        if not now:
            await asyncio.sleep(interval)
        while True:
            try:
                action()
            except Exception:
                self.broker.failed(what)
            await asyncio.sleep(interval)


def _peer(address) -> str:
    if not address:
        return "unknown"
    return f"{address[0]}:{address[1]}"


def _identities(ssl_object) -> tuple:
    """(PSK identity, certificate CN, PSK key) of a TLS connection; all None without TLS."""
    if ssl_object is None:
        return None, None, None
    from .tls import handshake_psk_key, peer_identity
    return (*peer_identity(ssl_object), handshake_psk_key(ssl_object))


class _StreamLink(asyncio.Protocol):
    """TCP (optionally TLS) transport for one client."""

    # The transport's methods are bound straight onto the link the core calls.
    __slots__ = ("broker", "auth", "gate", "counted", "client", "write", "close", "pause_reading",
                 "resume_reading", "data_received")

    def __init__(self, broker: Broker, auth, gate: _Gate):
        self.broker = broker
        self.auth = auth
        self.gate = gate
        self.counted = False  # this socket holds a place under max_connections
        self.client = None

    def connection_made(self, transport) -> None:
        peer = _peer(transport.get_extra_info("peername"))
        if not self.counted:
            if not self.gate.enter(peer):
                transport.abort()
                return
            self.counted = True
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self.write = transport.write
        self.close = transport.close
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading
        self.client = self.broker.connection_made(self, self.auth, peer,
                                                  *_identities(transport.get_extra_info("ssl_object")),
                                                  listener=self.auth.listener)
        self.data_received = self.client.data_received

    def connection_lost(self, exc) -> None:
        if self.counted:
            self.counted = False
            self.gate.leave()
        if self.client is not None:  # None: the TLS handshake never completed
            self.client.connection_lost()

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.pause_writing()

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.resume_writing()


class _TlsAcceptor(asyncio.Protocol):
    """Plain TCP until the TLS handshake completes, then a _StreamLink over TLS.

    Doing the handshake here rather than in create_server(ssl=...) lets a failed
    one (wrong PSK key, unknown identity, plain text on a TLS port) be logged with
    the peer's address; asyncio itself reports it only in debug mode. The socket
    counts under max_connections from accept, as in mosquitto.
    """

    def __init__(self, broker: Broker, auth, gate: _Gate, context, log: Log):
        self.link = _StreamLink(broker, auth, gate)
        self.gate = gate
        self.context = context
        self.log = log

    def connection_made(self, transport) -> None:
        if not self.gate.enter(_peer(transport.get_extra_info("peername"))):
            transport.abort()
            return
        self.link.counted = True
        transport.pause_reading()  # the ClientHello is for the TLS layer start_tls puts in
        asyncio.get_running_loop().create_task(self._handshake(transport))

    async def _handshake(self, transport) -> None:
        peer = _peer(transport.get_extra_info("peername"))
        try:
            tls_transport = await asyncio.get_running_loop().start_tls(
                transport, self.link, self.context, server_side=True, ssl_handshake_timeout=TLS_HANDSHAKE_S)
        except (OSError, asyncio.TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            self.log("notice", f"Client <unknown> ({peer}) disconnected: TLS handshake failed: {reason}.")
            transport.close()
            self.link.connection_lost(None)
            return
        self.link.connection_made(tls_transport)


class _WebSocketLink:
    """MQTT over WebSocket: writes are gathered and sent as one binary message."""

    def __init__(self, ws):
        self.ws = ws
        self.client = None
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.wake = asyncio.Event()
        self.closing = False
        self.reading_paused = False
        self.resume = asyncio.Event()
        self.writing_paused = False

    def write(self, data: bytes) -> None:
        self.pending.append(data)
        self.pending_size += len(data)
        self.wake.set()
        if self.pending_size > WRITE_BUFFER_HIGH and not self.writing_paused:
            self.writing_paused = True
            self.client.pause_writing()

    def close(self) -> None:
        self.closing = True
        self.wake.set()
        self.resume.set()

    def pause_reading(self) -> None:
        self.reading_paused = True
        self.resume.clear()

    def resume_reading(self) -> None:
        self.reading_paused = False
        self.resume.set()

    async def write_loop(self) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                if self.pending:
                    data = b"".join(self.pending)
                    self.pending.clear()
                    self.pending_size = 0
                    await self.ws.send(data)
                    if self.writing_paused:
                        self.writing_paused = False
                        self.client.resume_writing()
                if self.closing and not self.pending:
                    await self.ws.close()
                    return
        except Exception:  # connection already gone: nothing left to deliver to
            self.closing = True
