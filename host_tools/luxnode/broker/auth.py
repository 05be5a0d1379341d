"""Who may connect and what they may touch, as mosquitto 2 decides it for one listener.

The broker core asks ``authenticate`` at CONNECT and ``allowed`` on every
PUBLISH ("write"), SUBSCRIBE ("subscribe") and delivery ("read"). The files
(password_file, acl_file, psk_file) are read at start (a bad line stops the
broker) and again by ``reload`` on SIGHUP (a bad line keeps the old files); the
broker then asks ``authenticate`` again for every connected client.
"""

import hmac

from luxnode.mosquitto import acl as aclfile
from luxnode.mosquitto import passwd, pskfile
from luxnode.mosquitto.conf import ListenerConfig
from luxnode.mosquitto.errors import FileFormatError
from luxnode.mqtt.packets import ACCEPTED, REFUSED_BAD_CREDENTIALS, REFUSED_NOT_AUTHORIZED

_UNKNOWN_USER = passwd.hash_password(b"unknown user")   # the work a known user costs


class Auth:
    def __init__(self, listener: ListenerConfig, clientid_prefixes: str | None = None):
        self.listener = listener
        self.clientid_prefixes = clientid_prefixes
        self.last_reload_error: str | None = None
        self.passwords, self.acl, self.psk_keys = self._read_files()

    def _read_files(self):
        listener = self.listener
        passwords = passwd.read_file(listener.password_file) if listener.password_file else None
        acl = aclfile.read_file(listener.acl_file) if listener.acl_file else None
        psk_keys = pskfile.read_file(listener.psk_file) if listener.psk_file else {}
        return passwords, acl, psk_keys

    def reload(self) -> None:
        """Re-read the files; if one of them is malformed, keep all the old ones and put
        "FILE:LINE: reason" in ``last_reload_error`` for the broker's log."""
        try:
            self.passwords, self.acl, self.psk_keys = self._read_files()
        except FileFormatError as exc:
            self.last_reload_error = str(exc)
        else:
            self.last_reload_error = None

    def authenticate(self, client_id: str, username: str | None, password: bytes | None,
                     psk_identity: str | None = None, cert_identity: str | None = None,
                     psk_key: bytes | None = None) -> tuple[int, str | None]:
        """(CONNACK code, the username the client acts as).

        ``psk_key`` is the key the client's TLS handshake used: the identity must still
        have that key, so a reload that revokes or rotates it refuses the client.
        """
        listener = self.listener
        if self.clientid_prefixes and not client_id.startswith(self.clientid_prefixes):
            return REFUSED_NOT_AUTHORIZED, None
        if psk_key is not None and not hmac.compare_digest(self.psk_keys.get(psk_identity, b""), psk_key):
            return REFUSED_NOT_AUTHORIZED, None
        if listener.tls and listener.use_identity_as_username:
            # The TLS identity replaces the MQTT credentials, which are not checked (as mosquitto).
            identity = psk_identity if listener.psk_hint else cert_identity
            if not identity:
                return REFUSED_BAD_CREDENTIALS, None
            return ACCEPTED, identity
        if username is None:
            return (ACCEPTED, None) if listener.allow_anonymous else (REFUSED_NOT_AUTHORIZED, None)
        if self.passwords is None:
            # mosquitto 2: without a password file a username proves nothing; only
            # allow_anonymous lets the client in.
            return (ACCEPTED, username) if listener.allow_anonymous else (REFUSED_NOT_AUTHORIZED, None)
        if password is not None:
            password = bytes(password).split(b"\0", 1)[0]   # mosquitto reads it as a C string
        hashed = self.passwords.get(username)
        # Hash even for unknown users or a missing password, so the time taken does not tell.
        matches = passwd.verify(password or b"", hashed or _UNKNOWN_USER)
        if hashed is None or password is None or not matches:
            return REFUSED_NOT_AUTHORIZED, None
        return ACCEPTED, username

    def allowed(self, username: str | None, client_id: str, topic: str, access: str) -> bool:
        """access: "read" (delivery to the client), "write" (its PUBLISH), "subscribe" (a filter)."""
        if access not in aclfile.CHECKS:
            raise ValueError(f"unknown access {access!r}")
        if self.acl is None:
            return True
        return self.acl.allowed(username, client_id, topic, access)

    @property
    def username_as_client_id(self) -> bool:
        """use_username_as_clientid on this listener: the client id is the username."""
        return self.listener.use_username_as_clientid

    def psk_key(self, identity: str) -> bytes | None:
        return self.psk_keys.get(identity)


class DecisionCache(dict):
    """One client's ACL decisions (topic -> allowed), denied ones too, bounded in bytes.

    Topics may be 65,535 bytes long: a count limit would let 1,000 of them hold
    65 MB per client. Past ``MAX_BYTES`` the cache starts over; topics longer than
    ``MAX_TOPIC`` are not kept (checking them each time costs what reading them did).
    A dict itself, so the hit path is the built-in ``get``.
    """

    MAX_BYTES = 64 << 10
    MAX_TOPIC = 1024
    ENTRY_OVERHEAD = 100  # dict slot and str header, roughly

    __slots__ = ("size",)

    def __init__(self):
        super().__init__()
        self.size = 0

    def put(self, topic: str, allowed: bool) -> bool:
        if len(topic) <= self.MAX_TOPIC:
            cost = len(topic) + self.ENTRY_OVERHEAD
            if self.size + cost > self.MAX_BYTES:
                self.clear()
            self[topic] = allowed
            self.size += cost
        return allowed

    def clear(self) -> None:
        super().clear()
        self.size = 0
