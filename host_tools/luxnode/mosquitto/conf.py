"""The mosquitto.conf subset the lab broker understands.

One directive per line (``name value``), ``#`` starts a comment line. The
semantics are mosquitto 2's: with no ``listener`` line the broker listens on
localhost 1883 and allows anonymous clients; once listeners are defined
``allow_anonymous`` defaults to false. With ``per_listener_settings false``
(the default) password_file, acl_file, psk_file, allow_anonymous,
allow_zero_length_clientid and auto_id_prefix are global, wherever they appear;
with ``true`` they belong to the listener above them. psk_hint, the TLS options
and the listener limits (LISTENER_OPTIONS) always belong to the listener above
them. ``include_dir`` reads a folder's ``*.conf`` files in its place.

Every directive of mosquitto.conf(5) (2.0.11) is in one of three classes:
implemented; refused (it would restrict access or resources and the lab broker
does not implement it, so ignoring it would leave the broker more open than
configured: ConfigError naming FILE:LINE and the reason); or ignored with a
warning naming FILE:LINE (HARMLESS: ignoring it loosens nothing). An unknown
directive is an error, as in mosquitto: a misspelt limit must not pass unseen.
"""

from dataclasses import dataclass, field
from pathlib import Path

from luxnode.mosquitto import lines
from luxnode.mosquitto.errors import ConfigError

__all__ = ["ConfigError", "ListenerConfig", "BrokerConfig", "default", "load", "parse"]

DEFAULT_PORT = 1883
LOG_TYPES = {"debug", "error", "warning", "notice", "information", "subscribe", "unsubscribe", "websockets"}
DEFAULT_LOG_TYPES = {"error", "warning", "notice", "information"}
TLS_VERSIONS = ("tlsv1.1", "tlsv1.2", "tlsv1.3")
MAX_PAYLOAD = 268435455
# Global, or per listener with per_listener_settings true.
SECURITY = ("allow_anonymous", "password_file", "acl_file", "psk_file", "allow_zero_length_clientid",
            "auto_id_prefix")

# Directives the lab broker ignores, and why that loosens nothing.
HARMLESS = {
    "allow_duplicate_messages": "each message is sent once per subscription",
    "auth_opt_*": "auth plugins are refused", "plugin_opt_*": "auth plugins are refused",
    "auth_plugin_deny_special_chars": "auth plugins are refused",
    "autosave_on_changes": "saves follow autosave_interval in seconds",
    "capath": "only cafile's CAs are trusted (fewer, never more)",
    "dhparamfile": "TLS uses ECDHE key exchange, no DHE",
    "http_dir": "no HTTP files are served",
    "log_dest": "the log goes to standard error", "log_facility": "the log goes to standard error",
    "log_timestamp": "the log has unix timestamps", "log_timestamp_format": "the log has unix timestamps",
    "max_topic_alias": "topic aliases are MQTT 5, which the lab broker does not speak",
    "queue_qos0_messages": "QoS 0 is never queued for offline clients",
    "upgrade_outgoing_qos": "delivery uses the lower of the two QoS, as MQTT says",
    "websockets_headers_size": "the websockets library bounds headers (128 lines of 8 KiB)",
    "websockets_log_level": "WebSocket events are logged with log_type websockets",
}
# Directives that would restrict access or resources and that the lab broker does not implement.
REFUSED = {
    "auth_plugin": "auth plugins are not supported; use password_file, psk_file and acl_file",
    "plugin": "plugins are not supported; use password_file, psk_file and acl_file",
    "check_retain_source": "only 'check_retain_source false' is supported: retained messages are "
                           "not re-checked against their publisher's ACL",
    "ciphers": "cipher lists are not supported; remove it to use Python's secure defaults",
    "ciphers_tls1.3": "cipher lists are not supported; remove it to use Python's secure defaults",
    "crlfile": "certificate revocation lists are not supported; reissue the CA instead",
    "memory_limit": "memory_limit is not implemented; bound memory with message_size_limit, max_packet_size, "
                    "max_queued_messages/max_queued_bytes and max_connections, or a cgroup (systemd MemoryMax=)",
    "mount_point": "mount_point is not supported; confine clients with acl_file patterns",
    "tls_engine": "TLS engines are not supported", "tls_engine_kpass_sha1": "TLS engines are not supported",
    "tls_keyform": "TLS engines are not supported; keyfile must be PEM",
    "use_subject_as_username": "use_subject_as_username is not supported; use use_identity_as_username",
}
BRIDGE = {
    "connection", "address", "addresses", "bridge_attempt_unsubscribe", "bridge_bind_address",
    "bridge_max_packet_size", "bridge_outgoing_retain", "bridge_protocol_version", "cleansession",
    "local_cleansession", "keepalive_interval", "idle_timeout", "local_clientid", "local_password",
    "local_username", "notifications", "notifications_local_only", "notification_topic", "remote_clientid",
    "remote_password", "remote_username", "restart_timeout", "round_robin", "start_type", "threshold", "topic",
    "try_private", "bridge_alpn", "bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_identity",
    "bridge_insecure", "bridge_keyfile", "bridge_psk", "bridge_require_ocsp", "bridge_tls_version",
}
# Directives the lab broker implements (SECURITY and LISTENER_OPTIONS too).
IMPLEMENTED = {
    "listener", "port", "bind_address", "per_listener_settings", "persistence", "persistence_location",
    "persistence_file", "autosave_interval", "pid_file", "sys_interval", "connection_messages", "log_type",
    "max_keepalive", "max_queued_messages", "max_queued_bytes", "max_inflight_messages", "max_inflight_bytes",
    "message_size_limit", "max_packet_size", "retain_available", "set_tcp_nodelay", "user", "clientid_prefixes",
    "persistent_client_expiration", "include_dir",
}
# Settings of the listener above them (before any listener: the default listener).
LISTENER_OPTIONS = (
    "psk_hint", "cafile", "certfile", "keyfile", "require_certificate", "use_identity_as_username",
    "tls_version", "protocol", "bind_interface", "max_connections", "max_qos", "socket_domain",
    "use_username_as_clientid",
)
SOCKET_DOMAINS = ("ipv4", "ipv6")
EXPIRATION_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400, "y": 365 * 86400}


@dataclass
class ListenerConfig:
    port: int
    address: str | None = None
    protocol: str = "mqtt"                     # or "websockets"
    allow_anonymous: bool = False              # effective value for this listener
    password_file: Path | None = None
    acl_file: Path | None = None
    psk_file: Path | None = None
    psk_hint: str | None = None
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    require_certificate: bool = False
    use_identity_as_username: bool = False
    use_username_as_clientid: bool = False     # per listener, as in mosquitto 2
    tls_version: str | None = None
    bind_interface: str | None = None          # listen on this interface's addresses only
    max_connections: int = -1                  # -1 or 0 = no limit (as mosquitto 2.0.11)
    max_qos: int = 2
    socket_domain: str | None = None           # "ipv4", "ipv6" or both (None)
    allow_zero_length_clientid: bool = True
    auto_id_prefix: str = "auto-"

    @property
    def tls(self) -> bool:
        """TLS-PSK or certificates: this listener never speaks plain text."""
        return bool(self.psk_hint or self.certfile)


@dataclass
class BrokerConfig:
    listeners: list[ListenerConfig]
    per_listener_settings: bool = False
    persistence: bool = False
    persistence_location: Path | None = None
    persistence_file: str = "luxnode.db"
    autosave_interval: int = 1800
    max_keepalive: int = 65535
    max_queued_messages: int = 1000
    max_queued_bytes: int = 0                  # 0 = no limit
    max_inflight_messages: int = 20            # 0 = no limit
    max_inflight_bytes: int = 0                # 0 = no limit
    message_size_limit: int = 0                # 0 = protocol maximum
    max_packet_size: int = 0                   # 0 = protocol maximum
    retain_available: bool = True
    set_tcp_nodelay: bool = False
    user: str | None = None                    # run as this user when started as root
    persistent_client_expiration: int = 0      # seconds offline before a persistent session goes; 0 = never
    clientid_prefixes: str | None = None
    log_types: set[str] = field(default_factory=lambda: set(DEFAULT_LOG_TYPES))
    connection_messages: bool = True
    pid_file: Path | None = None
    sys_interval: int = 10
    warnings: list[str] = field(default_factory=list)


def default() -> BrokerConfig:
    """No config file: localhost 1883, anonymous, in memory (mosquitto 2's local-only mode)."""
    return BrokerConfig(listeners=[ListenerConfig(DEFAULT_PORT, "127.0.0.1", allow_anonymous=True)])


def load(path: str | Path) -> BrokerConfig:
    path = Path(path)
    return parse(lines.read_text(path, ConfigError, "config file"), path)


def parse(text: str, path: str | Path = "<config>") -> BrokerConfig:
    return _Parser(Path(path)).run(text)


class _Scope:
    """The settings given under one listener (or before the first one)."""

    def __init__(self, listener: ListenerConfig, path: Path, line: int):
        self.listener = listener
        self.path = path      # the file of its `listener` line (include_dir brings others)
        self.line = line
        self.security: dict[str, object] = {}
        self.security_lines: dict[str, tuple[Path, int]] = {}
        self.option_lines: dict[str, tuple[Path, int]] = {}
        self.seen: set[str] = set()


class _Parser:
    def __init__(self, path: Path):
        self.path = path       # the file whose line is being read
        self.main = path
        self.base = path.parent if path.name != "<config>" else Path.cwd()
        self.config = BrokerConfig(listeners=[])
        self.default = _Scope(ListenerConfig(DEFAULT_PORT), path, 0)
        self.scopes: list[_Scope] = []
        self.current = self.default
        self.global_security: dict[str, object] = {}
        self.global_seen: set[str] = set()
        self.default_listener_asked = False    # the deprecated `port` / `bind_address`
        self.log_type_seen = False

    # -- helpers -------------------------------------------------------------------

    def error(self, line: int, reason: str):
        return ConfigError(self.path, line, reason)

    def warn(self, line: int, reason: str) -> None:
        self.config.warnings.append(f"{self.path}:{line}: {reason}")

    def value(self, line: int, name: str, args: str) -> str:
        if not args:
            raise self.error(line, f"'{name}' needs a value")
        return args

    def one(self, line: int, name: str, args: str) -> str:
        words = self.value(line, name, args).split()
        if len(words) != 1:
            raise self.error(line, f"'{name}' takes one value, got {len(words)}: '{args}'")
        return words[0]

    def boolean(self, line: int, name: str, args: str) -> bool:
        word = self.one(line, name, args)
        if word in ("true", "1"):
            return True
        if word in ("false", "0"):
            return False
        raise self.error(line, f"invalid {name} value '{word}' (expected true or false)")

    def integer(self, line: int, name: str, args: str, low: int, high: int | None = None) -> int:
        word = self.one(line, name, args)
        try:
            number = int(word)
        except ValueError:
            raise self.error(line, f"invalid {name} value '{word}' (expected a whole number)") from None
        if number < low or (high is not None and number > high):
            span = f"{low}..{high}" if high is not None else f"{low} or more"
            raise self.error(line, f"invalid {name} value {number} (allowed: {span})")
        return number

    def expiration(self, line: int, name: str, args: str) -> int:
        """mosquitto's duration: a whole number and a unit, h d w m or y (14d, 1y)."""
        word = self.one(line, name, args)
        unit = EXPIRATION_UNITS.get(word[-1:])
        if unit is None or not word[:-1].isdigit() or int(word[:-1]) == 0:
            raise self.error(line, f"invalid {name} duration '{word}' (a number and h, d, w, m or y, e.g. 14d)")
        return int(word[:-1]) * unit

    def file_path(self, line: int, name: str, args: str) -> Path:
        path = Path(self.value(line, name, args)).expanduser()
        return path if path.is_absolute() else self.base / path

    def once(self, seen: set[str], line: int, name: str) -> None:
        if name in seen:
            raise self.error(line, f"duplicate {name} value")
        seen.add(name)

    # -- directives ----------------------------------------------------------------

    def run(self, text: str) -> BrokerConfig:
        directives = self.read(text, self.path, included=False)
        # mosquitto reads per_listener_settings before the rest: it decides where the others go.
        for self.path, lineno, name, args in directives:
            if name == "per_listener_settings":
                self.config.per_listener_settings = self.boolean(lineno, name, args)
        for self.path, lineno, name, args in directives:
            self.directive(lineno, name, args)
        return self.finish()

    def read(self, text: str, path: Path, included: bool) -> list[tuple[Path, int, str, str]]:
        """(file, line, name, arguments) of every directive, include_dir's files in its place."""
        directives = []
        for lineno, line in lines.content(text):
            name, args = (line.split(None, 1) + [""])[:2]
            args = args.strip()
            if name != "include_dir":
                directives.append((path, lineno, name, args))
                continue
            self.path = path
            if included:
                raise self.error(lineno, "include_dir is only read from the main config file (as mosquitto)")
            for conf in self.included(lineno, self.file_path(lineno, name, args)):
                directives += self.read(lines.read_text(conf, ConfigError, "config file"), conf, included=True)
        return directives

    def included(self, line: int, folder: Path) -> list[Path]:
        """The folder's *.conf files in mosquitto's order: by letter, upper case first."""
        try:
            files = [entry for entry in folder.iterdir() if entry.name.endswith(".conf") and entry.is_file()]
        except OSError as exc:
            raise self.error(line, f"cannot read include_dir {folder}: {exc.strerror}") from None
        if any(entry.resolve() == self.main.resolve() for entry in files):
            raise self.error(line, f"include_dir {folder} holds the main config file")
        return sorted(files, key=lambda entry: [(char.lower(), char.islower()) for char in entry.name])

    def directive(self, line: int, name: str, args: str) -> None:
        config, listener = self.config, self.current.listener
        if name == "per_listener_settings":
            self.once(self.global_seen, line, name)
        elif name == "listener":
            self.listener(line, args)
        elif name == "port":
            self.default.listener.port = self.integer(line, name, args, 1, 65535)
            self.default_listener_asked = True
        elif name == "bind_address":
            self.default.listener.address = self.one(line, name, args)
            self.default_listener_asked = True
        elif name in SECURITY:
            scope_seen = self.current.seen if config.per_listener_settings else self.global_seen
            security = self.current.security if config.per_listener_settings else self.global_security
            self.once(scope_seen, line, name)
            self.current.security_lines[name] = (self.path, line)
            if name in ("allow_anonymous", "allow_zero_length_clientid"):
                security[name] = self.boolean(line, name, args)
            elif name == "auto_id_prefix":
                security[name] = self.one(line, name, args)
            else:
                security[name] = self.file_path(line, name, args)
        elif name in LISTENER_OPTIONS:
            self.once(self.current.seen, line, name)
            self.current.option_lines.setdefault(name, (self.path, line))
            self.listener_option(line, name, args, listener)
        elif name in ("persistence", "connection_messages", "retain_available", "set_tcp_nodelay"):
            setattr(config, name, self.boolean(line, name, args))
        elif name in ("persistence_location", "pid_file"):
            self.once(self.global_seen, line, name)
            setattr(config, name, self.file_path(line, name, args))
        elif name == "persistence_file":
            filename = self.value(line, name, args)
            if "/" in filename:
                raise self.error(line, "persistence_file is a file name; put the folder in persistence_location")
            config.persistence_file = filename
        elif name == "autosave_interval":
            config.autosave_interval = self.integer(line, name, args, 0)
        elif name == "sys_interval":
            config.sys_interval = self.integer(line, name, args, 0)
        elif name == "max_keepalive":
            config.max_keepalive = self.integer(line, name, args, 10, 65535)
        elif name in ("max_queued_messages", "max_queued_bytes", "max_inflight_bytes"):
            setattr(config, name, self.integer(line, name, args, 0))
        elif name == "max_inflight_messages":
            config.max_inflight_messages = self.integer(line, name, args, 0, 65535)
        elif name == "message_size_limit":
            config.message_size_limit = self.integer(line, name, args, 0, MAX_PAYLOAD)
        elif name == "max_packet_size":
            size = self.integer(line, name, args, 0, MAX_PAYLOAD + 5)
            if 0 < size < 20:  # as mosquitto: it would break normal clients
                raise self.error(line, f"invalid max_packet_size value {size} (0, or 20 or more)")
            config.max_packet_size = size
        elif name == "persistent_client_expiration":
            self.once(self.global_seen, line, name)
            config.persistent_client_expiration = self.expiration(line, name, args)
        elif name == "user":
            self.once(self.global_seen, line, name)  # as mosquitto: "Duplicate user value"
            config.user = self.one(line, name, args)
        elif name == "clientid_prefixes":
            config.clientid_prefixes = self.value(line, name, args)
        elif name == "log_type":
            self.log_type(line, args)
        elif name == "check_retain_source" and self.boolean(line, name, args) is False:
            pass  # the lab broker's behaviour: retained messages are checked against the reader only
        elif name in REFUSED:
            raise self.error(line, REFUSED[name])
        elif name in BRIDGE:
            raise self.error(line, f"'{name}' configures a bridge; bridges are not supported by the lab broker")
        elif name in HARMLESS or name.startswith(("auth_opt_", "plugin_opt_")):
            why = HARMLESS.get(name) or HARMLESS["auth_opt_*"]
            self.warn(line, f"mosquitto directive '{name}' is not supported by the lab broker, ignored ({why})")
        else:
            raise self.error(line, f"unknown directive '{name}'")

    def listener(self, line: int, args: str) -> None:
        words = self.value(line, "listener", args).split()
        if len(words) > 2:
            raise self.error(line, f"'listener' takes a port and an optional address, got '{args}'")
        if words[0] == "0":
            raise self.error(line, "listener port 0 (a Unix socket) is not supported")
        port = self.integer(line, "listener port", words[0], 1, 65535)
        address = words[1] if len(words) == 2 else None
        for scope in self.scopes:
            if (scope.listener.port, scope.listener.address) == (port, address):
                where = f"line {scope.line}" if scope.path == self.path else f"{scope.path}:{scope.line}"
                raise self.error(line, f"listener {port}{' ' + address if address else ''} is already defined "
                                       f"at {where}")
        self.current = _Scope(ListenerConfig(port, address), self.path, line)
        self.scopes.append(self.current)

    def listener_option(self, line: int, name: str, args: str, listener: ListenerConfig) -> None:
        if name in ("cafile", "certfile", "keyfile"):
            setattr(listener, name, self.file_path(line, name, args))
        elif name in ("require_certificate", "use_identity_as_username", "use_username_as_clientid"):
            setattr(listener, name, self.boolean(line, name, args))
        elif name == "psk_hint":
            listener.psk_hint = self.value(line, name, args)
        elif name == "tls_version":
            version = self.one(line, name, args)
            if version not in TLS_VERSIONS:
                raise self.error(line, f"invalid tls_version '{version}' (expected {', '.join(TLS_VERSIONS)})")
            listener.tls_version = version
        elif name == "protocol":
            protocol = self.one(line, name, args)
            if protocol not in ("mqtt", "websockets"):
                raise self.error(line, f"invalid protocol '{protocol}' (expected mqtt or websockets)")
            listener.protocol = protocol
        elif name == "bind_interface":
            listener.bind_interface = self.one(line, name, args)
        elif name == "max_connections":
            listener.max_connections = self.integer(line, name, args, -1)
        elif name == "max_qos":
            listener.max_qos = self.integer(line, name, args, 0, 2)
        elif name == "socket_domain":
            domain = self.one(line, name, args)
            if domain not in SOCKET_DOMAINS:
                raise self.error(line, f"invalid socket_domain '{domain}' (expected ipv4 or ipv6)")
            listener.socket_domain = domain

    def log_type(self, line: int, args: str) -> None:
        types = self.value(line, "log_type", args).split()
        if not self.log_type_seen:  # the first log_type replaces mosquitto's default set
            self.config.log_types = set()
            self.log_type_seen = True
        for word in types:
            if word == "all":
                self.config.log_types |= LOG_TYPES
            elif word == "none":
                self.config.log_types = set()
            elif word in LOG_TYPES:
                self.config.log_types.add(word)
            else:
                raise self.error(line, f"invalid log_type '{word}' (expected one of "
                                       f"{', '.join(sorted(LOG_TYPES))}, all, none)")

    # -- the effective listeners -----------------------------------------------------

    def finish(self) -> BrokerConfig:
        local_only = not self.scopes and not self.default_listener_asked
        scopes = ([self.default] if local_only or self.default_listener_asked else []) + self.scopes
        if local_only:
            self.default.listener.address = "127.0.0.1"
        if self.default not in scopes and self.default.option_lines:
            name, (self.path, line) = min(self.default.option_lines.items(), key=lambda item: item[1][1])
            raise self.error(line, f"'{name}' before the first listener applies to no listener here; "
                                   "put it under a 'listener' line")
        if self.config.per_listener_settings and self.scopes and not self.default_listener_asked:
            for name, (self.path, line) in self.default.security_lines.items():
                # mosquitto ignores it silently: a listener would be more open than the file reads.
                raise self.error(line, f"'{name}' before the first listener applies to no listener with "
                                       "per_listener_settings true; put it under a 'listener' line")
        for scope in scopes:
            security = scope.security if self.config.per_listener_settings else self.global_security
            listener = scope.listener
            listener.allow_anonymous = bool(security.get("allow_anonymous", local_only))
            for name in ("password_file", "acl_file", "psk_file", "allow_zero_length_clientid", "auto_id_prefix"):
                if name in security:
                    setattr(listener, name, security[name])
            self.check_listener(scope)
            self.config.listeners.append(listener)
        return self.config

    def check_listener(self, scope: _Scope) -> None:
        listener, line = scope.listener, scope.line
        self.path = scope.path
        where = f"listener {listener.port}"
        if bool(listener.certfile) != bool(listener.keyfile):
            raise self.error(line, f"{where}: certfile and keyfile must be given together")
        if listener.psk_hint and listener.certfile:
            raise self.error(line, f"{where}: psk_hint together with certfile is not supported; use two listeners")
        if listener.psk_hint and listener.protocol == "websockets":
            raise self.error(line, f"{where}: psk_hint is not supported on a websockets listener")
        if listener.require_certificate and not listener.certfile:
            raise self.error(line, f"{where}: require_certificate needs certfile and keyfile (a TLS listener)")
        if listener.require_certificate and not listener.cafile:
            raise self.error(line, f"{where}: require_certificate needs cafile to check client certificates")
        if listener.psk_hint and listener.tls_version == "tlsv1.3":
            raise self.error(line, f"{where}: TLS-PSK here uses TLS 1.2; tls_version tlsv1.3 excludes it")
        if not listener.tls:
            for name in ("cafile", "tls_version", "use_identity_as_username"):
                if getattr(listener, name):
                    self.warn(line, f"{where}: {name} has no effect without psk_hint or certfile/keyfile")
        if listener.psk_hint and not listener.psk_file:
            self.warn(line, f"{where}: psk_hint without psk_file: no client can complete the handshake")
