"""Python 3.13's TLS-PSK callbacks for Python 3.11 and 3.12, with no compiler.

Python 3.13 added ``SSLContext.set_psk_client_callback`` and
``set_psk_server_callback``. Before it, the PSK calls of the very OpenSSL that
the ``_ssl`` module is linked with are reached through ctypes and installed on
the context's ``SSL_CTX``, so every connection made from the context inherits
them (no per-connection setup, which is what broke sslpsk3 under asyncio).

The ``SSL_CTX`` pointer is the first field after the object header of CPython's
``PySSLContext`` (Modules/_ssl.c, unchanged from 3.6 through 3.12); a context
whose options and verify mode do not read back through that pointer is refused
rather than trusted, so a different layout fails loudly, never silently.
"""

import ctypes
import ssl

import _ssl

from luxnode.errors import LuxnodeError

# dlsym on the _ssl extension finds libssl's symbols as _ssl itself resolves them.
_libssl = ctypes.CDLL(_ssl.__file__)

_SERVER_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_void_p, ctypes.c_char_p,
                                    ctypes.POINTER(ctypes.c_char), ctypes.c_uint)
_CLIENT_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_void_p, ctypes.c_char_p,
                                    ctypes.POINTER(ctypes.c_char), ctypes.c_uint,
                                    ctypes.POINTER(ctypes.c_char), ctypes.c_uint)

_libssl.SSL_CTX_set_psk_server_callback.argtypes = (ctypes.c_void_p, _SERVER_CALLBACK)
_libssl.SSL_CTX_set_psk_server_callback.restype = None
_libssl.SSL_CTX_set_psk_client_callback.argtypes = (ctypes.c_void_p, _CLIENT_CALLBACK)
_libssl.SSL_CTX_set_psk_client_callback.restype = None
_libssl.SSL_CTX_use_psk_identity_hint.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
_libssl.SSL_CTX_use_psk_identity_hint.restype = ctypes.c_int
_libssl.SSL_CTX_get_options.argtypes = (ctypes.c_void_p,)
_libssl.SSL_CTX_get_options.restype = ctypes.c_uint64
_libssl.SSL_CTX_get_verify_mode.argtypes = (ctypes.c_void_p,)
_libssl.SSL_CTX_get_verify_mode.restype = ctypes.c_int


def _ssl_ctx(context: ssl.SSLContext) -> int:
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if (not pointer or _libssl.SSL_CTX_get_options(pointer) != int(context.options)
            or _libssl.SSL_CTX_get_verify_mode(pointer) != int(context.verify_mode)):
        raise LuxnodeError("TLS-PSK: this Python's ssl module is laid out differently than expected; "
                           "use Python 3.13 or newer, whose ssl module has TLS-PSK built in")
    return pointer


def _copy(destination, capacity: int, data: bytes) -> bool:
    if len(data) > capacity:
        return False
    ctypes.memmove(destination, data, len(data))
    return True


class PskContext(ssl.SSLContext):
    """An SSLContext with Python 3.13's ``set_psk_client_callback``/``set_psk_server_callback``."""

    def set_psk_server_callback(self, callback, identity_hint: str | None = None) -> None:
        """``callback(identity) -> key bytes``; b"" refuses the client."""
        def server(_ssl, identity, psk, max_psk_len):
            try:   # an exception must not cross into OpenSSL: refuse instead
                key = callback(identity.decode() if identity is not None else None)
                return len(key) if key and _copy(psk, max_psk_len, key) else 0
            except Exception:  # noqa: BLE001
                return 0

        pointer = _ssl_ctx(self)
        self._psk_callback = _SERVER_CALLBACK(server)   # kept alive as long as the context
        _libssl.SSL_CTX_set_psk_server_callback(pointer, self._psk_callback)
        if identity_hint is not None and _libssl.SSL_CTX_use_psk_identity_hint(pointer, identity_hint.encode()) != 1:
            raise LuxnodeError(f"TLS-PSK: OpenSSL refused the identity hint {identity_hint!r}")

    def set_psk_client_callback(self, callback) -> None:
        """``callback(hint) -> (identity, key bytes)``."""
        def client(_ssl, hint, identity_out, max_identity_len, psk, max_psk_len):
            try:
                identity, key = callback(hint.decode() if hint is not None else None)
                identity_bytes = (identity or "").encode() + b"\0"
                if not key or not _copy(identity_out, max_identity_len, identity_bytes):
                    return 0
                return len(key) if _copy(psk, max_psk_len, key) else 0
            except Exception:  # noqa: BLE001
                return 0

        self._psk_callback = _CLIENT_CALLBACK(client)
        _libssl.SSL_CTX_set_psk_client_callback(_ssl_ctx(self), self._psk_callback)
