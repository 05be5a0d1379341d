"""Sockets, TLS, WebSockets, timers and storage around the protocol core.

``Server(config)`` is the whole broker: ``await server.start()`` binds every
listener (port 0 picks a free one; ``server.ports`` lists the bound ports in
listener order), ``await server.stop()`` closes them and saves. ``reload()``
re-reads the auth files of every listener (SIGHUP) and disconnects the clients
they no longer let in.
"""

import asyncio
import os
import sqlite3
import time
from pathlib import Path

from luxnode import __version__
from luxnode.errors import LuxnodeError

from .auth import Auth
from .core import Broker
from .log import Log
from .store import Store

TICK_S = 0.25             # keepalive resolution
TLS_HANDSHAKE_S = 20.0   # a TLS client must finish its handshake by then
WRITE_BUFFER_HIGH = 1 << 20  # bytes buffered for a client before its publishers are held
WEBSOCKET_MAX_MESSAGE = (1 << 28) + 5  # the largest MQTT packet; MQTT keepalive replaces WS pings


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
        self._tasks.append(loop.create_task(self._every(TICK_S, self.broker.tick)))
        if config.sys_interval > 0:
            self._tasks.append(loop.create_task(self._every(config.sys_interval, self.broker.publish_sys, now=True)))
        if self.store is not None and config.autosave_interval > 0:
            self._tasks.append(loop.create_task(self._every(config.autosave_interval, self.save)))
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
            self.save()
            self.store.close()
            self.store = None
        if self.config.pid_file:
            Path(self.config.pid_file).unlink(missing_ok=True)
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

    # ---- persistence -----------------------------------------------------------

    def _open_store(self) -> None:
        config = self.config
        path = Path(config.persistence_location or ".") / config.persistence_file
        store = None
        try:
            store = Store(path)
            retained, sessions = store.load()
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

    def save(self) -> None:
        broker = self.broker
        if self.store is None or not (broker.changed_retained or broker.changed_sessions):
            return
        retained = {topic: broker.retained.get(topic) for topic in broker.changed_retained}
        sessions = {}
        for client_id in broker.changed_sessions:
            session = broker.sessions.get(client_id)
            sessions[client_id] = session if session is not None and session.persistent else None
        broker.changed_retained = set()
        broker.changed_sessions = set()
        try:
            self.store.save(retained, sessions)
        except Exception as exc:  # a full disk must not take the broker down
            self.log("error", f"Saving to {self.store.path} failed: {exc}")

    # ---- listeners ---------------------------------------------------------------

    async def _listen(self, listener, auth) -> int:
        context = None
        if listener.tls:
            from .tls import server_context
            context = server_context(listener, auth, log=self.log)
            if context is None:
                raise LuxnodeError(f"listener {listener.port}: TLS is configured but no TLS context could be made")
        host = listener.address
        if listener.protocol == "websockets":
            from websockets.asyncio.server import serve
            server = await serve(lambda ws: self._websocket(ws, auth), host, listener.port,
                                 subprotocols=["mqtt", "mqttv3.1"], ssl=context, compression=None,
                                 max_size=WEBSOCKET_MAX_MESSAGE, ping_interval=None)
            kind = "websockets"
        else:
            loop = asyncio.get_running_loop()
            if context is None:
                factory = lambda: _StreamLink(self.broker, auth)  # noqa: E731
            else:
                factory = lambda: _TlsAcceptor(self.broker, auth, context, self.log)  # noqa: E731
            try:
                server = await loop.create_server(factory, host, listener.port, reuse_address=True)
            except OSError as exc:
                raise LuxnodeError(f"cannot listen on {host or '*'}:{listener.port}: {exc.strerror}; "
                                   "is another broker running? choose another port") from None
            kind = "tls" if context else "mqtt"
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        self.log("notice", f"Opening {kind} listen socket on {host or '*'} port {port}.")
        return port

    async def _websocket(self, ws, auth) -> None:
        link = _WebSocketLink(ws)
        peer = _peer(ws.remote_address)
        ssl_object = ws.transport.get_extra_info("ssl_object")
        client = link.client = self.broker.connection_made(link, auth, peer, *_identities(ssl_object))
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

    async def _every(self, interval: float, action, now: bool = False) -> None:
        if now:
            action()
        while True:
            await asyncio.sleep(interval)
            action()


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
    __slots__ = ("broker", "auth", "client", "write", "close", "pause_reading", "resume_reading",
                 "data_received")

    def __init__(self, broker: Broker, auth):
        self.broker = broker
        self.auth = auth
        self.client = None

    def connection_made(self, transport) -> None:
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self.write = transport.write
        self.close = transport.close
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading
        self.client = self.broker.connection_made(self, self.auth, _peer(transport.get_extra_info("peername")),
                                                  *_identities(transport.get_extra_info("ssl_object")))
        self.data_received = self.client.data_received

    def connection_lost(self, exc) -> None:
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
    the peer's address; asyncio itself reports it only in debug mode.
    """

    def __init__(self, broker: Broker, auth, context, log: Log):
        self.link = _StreamLink(broker, auth)
        self.context = context
        self.log = log

    def connection_made(self, transport) -> None:
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
