"""Server-side TLS for a listener: TLS-PSK (``psk_hint`` + ``psk_file``) or certificates.

PSK needs ``SSLContext.set_psk_server_callback``: the standard library has it
from Python 3.13; before that ``luxnode.psk.PskContext`` provides the same
method (see luxnode.psk_openssl). The PSK callback receives only the identity,
so the SSLObject whose handshake is running is kept in a thread-local while
OpenSSL calls back, and the accepted identity and key are recorded on it for
``peer_identity`` and ``handshake_psk_key``.

A TLS listener never accepts plain text, and a PSK listener offers only PSK
suites on TLS 1.2: there is nothing weaker to fall back to.
"""

import logging
import ssl
import threading

from luxnode.errors import LuxnodeError
from luxnode.mosquitto.conf import ListenerConfig
from luxnode.psk import PskContext

logger = logging.getLogger(__name__)

TLS_MINIMUM = {"tlsv1.1": ssl.TLSVersion.TLSv1_1, "tlsv1.2": ssl.TLSVersion.TLSv1_2,
               "tlsv1.3": ssl.TLSVersion.TLSv1_3}
PSK_CIPHERS = "PSK"

_handshaking = threading.local()   # .current: the SSLObject inside do_handshake on this thread

class _ServerObject(ssl.SSLObject):
    """An SSLObject that sets up PSK once and remembers the identity and key the server accepted."""

    psk_identity: str | None = None
    psk_key: bytes | None = None

    def do_handshake(self):
        _handshaking.current = self
        try:
            super().do_handshake()
        finally:
            _handshaking.current = None


class _PskServerContext(PskContext):
    sslobject_class = _ServerObject


def server_context(listener: ListenerConfig, auth, log=None) -> ssl.SSLContext | None:
    """The SSLContext for ``listener``, or None for a plain listener.

    ``log(kind, message)`` (the broker's Log) hears about PSK identities that are refused;
    without it they go to the standard logging module.
    """
    if listener.psk_hint:
        return _psk_context(listener, auth, log)
    if listener.certfile:
        return _cert_context(listener)
    return None


def _psk_context(listener: ListenerConfig, auth, log) -> ssl.SSLContext:
    ctx = _PskServerContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = TLS_MINIMUM.get(listener.tls_version or "tlsv1.2")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2   # the PSK callbacks speak TLS 1.2 suites
    ctx.set_ciphers(PSK_CIPHERS)
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    ctx.set_psk_server_callback(_psk_lookup(auth, listener.psk_hint, log), listener.psk_hint)
    return ctx


def _psk_lookup(auth, hint: str, log):
    def lookup(identity: str | None) -> bytes:
        # Called by OpenSSL inside the handshake: it must not raise. b"" refuses the client.
        try:
            key = auth.psk_key(identity) if identity else None
        except Exception as exc:  # noqa: BLE001 - a failing lookup refuses the handshake
            _report(log, "error", f"TLS-PSK key lookup for identity {identity!r} failed: {exc!r}")
            key = None
        if not key:
            _report(log, "notice", f"TLS-PSK handshake refused on the {hint!r} listener: "
                                   f"unknown identity {identity!r} (not in psk_file).")
            return b""
        current = getattr(_handshaking, "current", None)
        if current is not None:
            current.psk_identity, current.psk_key = identity, key
        return key
    return lookup


def _report(log, kind: str, message: str) -> None:
    if log is not None:
        log(kind, message)
    else:
        logger.log(logging.ERROR if kind == "error" else logging.INFO, message)


def _cert_context(listener: ListenerConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = TLS_MINIMUM.get(listener.tls_version or "tlsv1.2")
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    try:
        ctx.load_cert_chain(listener.certfile, listener.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise LuxnodeError(f"listener {listener.port}: cannot load certfile {listener.certfile} with keyfile "
                           f"{listener.keyfile}: {exc}; check both are PEM and belong together") from None
    if listener.cafile:
        try:
            ctx.load_verify_locations(cafile=listener.cafile)
        except (OSError, ssl.SSLError) as exc:
            raise LuxnodeError(f"listener {listener.port}: cannot load cafile {listener.cafile}: {exc}") from None
    # As mosquitto: client certificates are asked for only with require_certificate.
    ctx.verify_mode = ssl.CERT_REQUIRED if listener.require_certificate else ssl.CERT_NONE
    return ctx


def handshake_psk_key(ssl_object) -> bytes | None:
    """The key a PSK handshake was made with, so a reload that revokes or changes it is noticed."""
    return getattr(ssl_object, "psk_key", None)


def peer_identity(ssl_object) -> tuple[str | None, str | None]:
    """(PSK identity, certificate common name) of a connection's completed handshake."""
    psk_identity = getattr(ssl_object, "psk_identity", None)
    common_name = None
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                common_name = value
                break
        if common_name:
            break
    return psk_identity, common_name
