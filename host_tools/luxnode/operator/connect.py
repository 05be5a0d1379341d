"""Connect an operator's paho client to any broker: options first, then the lab registry.

``luxnode watch`` and ``luxnode set`` share these options. Without options they
talk to the lab broker as the registry's ``operator`` account over the password
listener; with ``--psk-identity``/``--psk-key`` they use TLS-PSK (luxnode.psk: the
standard library's PSK callbacks, or the same API on Python < 3.13), with ``--cafile`` TLS with a
certificate. A TLS setting never falls back to plain MQTT.
"""

import ssl
import threading
import uuid
from dataclasses import dataclass

from luxnode.errors import LuxnodeError
from luxnode.psk import client_context

CONNECT_TIMEOUT_S = 10.0


@dataclass
class BrokerSettings:
    host: str
    port: int
    prefix: str = "luxnode"
    username: str | None = None
    password: str | None = None
    psk_identity: str | None = None
    psk_key: str | None = None      # hex
    cafile: str | None = None

    @property
    def tls(self) -> str:
        if self.psk_identity:
            return "psk"
        return "cert" if self.cafile else "none"


def add_broker_arguments(parser) -> None:
    group = parser.add_argument_group("broker (defaults: the lab registry's broker and operator account)")
    group.add_argument("--host", help="broker host")
    group.add_argument("--port", type=int, help="broker port")
    group.add_argument("--username", help="MQTT username")
    group.add_argument("--password", help="MQTT password")
    group.add_argument("--psk-identity", help="TLS-PSK identity")
    group.add_argument("--psk-key", help="TLS-PSK key in hex")
    group.add_argument("--cafile", help="CA certificate: TLS with certificate verification")
    group.add_argument("--prefix", help="topic prefix (default luxnode)")


def load_registry() -> dict:
    """The lab registry, or {} where no lab was set up (then options or defaults apply)."""
    from luxnode.device import registry

    return registry.load() if registry.path().exists() else {}


def operator_settings(registry: dict) -> BrokerSettings:
    """The lab registry's operator account on the registry's password listener."""
    broker, operator = registry["broker"], registry["operator"]
    return BrokerSettings(host=broker["host"], port=broker["password_port"], prefix=broker["prefix"],
                          username=operator["username"], password=operator["password"])


def settings_from_args(args) -> BrokerSettings:
    registry = load_registry()
    broker = registry.get("broker", {})
    operator = registry.get("operator", {})
    if bool(args.psk_identity) != bool(args.psk_key):
        raise LuxnodeError("--psk-identity and --psk-key go together; pass both or neither")
    if args.psk_key:
        try:
            bytes.fromhex(args.psk_key)
        except ValueError:
            raise LuxnodeError("--psk-key is not hex; pass the key as in the psk file (e.g. 64 hex digits)") from None
    psk = bool(args.psk_identity)
    default_port = broker.get("psk_port", 8883) if psk else broker.get("password_port", 1883)
    username = args.username or operator.get("username")
    # The registry's password belongs to the registry's operator, not to another --username.
    password = args.password
    if password is None and username == operator.get("username"):
        password = operator.get("password")
    return BrokerSettings(
        host=args.host or broker.get("host", "127.0.0.1"),
        port=args.port or default_port,
        prefix=args.prefix or broker.get("prefix", "luxnode"),
        username=username,
        password=password,
        psk_identity=args.psk_identity,
        psk_key=args.psk_key,
        cafile=args.cafile,
    )


def connect(settings: BrokerSettings, client_name: str, timeout: float = CONNECT_TIMEOUT_S):
    """A connected paho client with its network loop running; raises LuxnodeError on failure."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"luxnode-{client_name}-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls == "psk":
        client.tls_set_context(client_context(settings.psk_identity, bytes.fromhex(settings.psk_key)))
    elif settings.tls == "cert":
        try:
            client.tls_set(ca_certs=settings.cafile)
        except OSError as exc:  # ssl.SSLError too: a file that holds no certificate
            raise LuxnodeError(f"cannot use --cafile {settings.cafile}: {exc.strerror or exc}") from None
    connected = threading.Event()
    outcome = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        outcome["reason"] = reason_code
        connected.set()

    client.on_connect = on_connect
    where = f"{settings.host}:{settings.port}"
    try:
        client.connect(settings.host, settings.port, keepalive=30)
    except ssl.SSLError as exc:
        raise LuxnodeError(_handshake_refused(settings, where, exc)) from None
    except ConnectionResetError as exc:
        if settings.tls == "psk":   # mosquitto hangs up on an unknown identity mid-handshake
            raise LuxnodeError(_handshake_refused(settings, where, exc)) from None
        raise LuxnodeError(f"the broker at {where} closed the connection: {exc}") from None
    except OSError as exc:
        raise LuxnodeError(f"cannot reach the broker at {where}: {exc.strerror or exc}; "
                           "is it running (luxnode lab)?") from None
    client.loop_start()
    if not connected.wait(timeout):
        client.loop_stop()
        raise LuxnodeError(f"no CONNACK from {where} within {timeout:g} s; check the port and TLS options")
    if outcome["reason"].is_failure:
        client.loop_stop()
        raise LuxnodeError(
            f"the broker at {where} refused the connection: {outcome['reason']}; check the username and password "
            "(--username/--password, or the registry's operator) or the PSK"
        )
    return client


def _handshake_refused(settings: BrokerSettings, where: str, exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    if settings.tls == "psk":
        return (f"the broker at {where} refused the TLS-PSK handshake ({reason}): it does not accept "
                f"identity {settings.psk_identity!r} with this key; check --psk-identity and --psk-key")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the broker at {where} has a certificate --cafile does not verify ({exc.reason}: {exc.verify_message})"
    return f"TLS with the broker at {where} failed ({reason}); check the port and the TLS options"


def subscribe_snapshot(client, filters: list[str], marker_filter: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Subscribe to ``filters`` and return once their retained messages have been delivered.

    The broker answers SUBSCRIBE packets in order and sends a subscription's
    retained messages before it handles the next packet, so the SUBACK of a
    second subscription (``marker_filter``) marks the end of the snapshot.
    """
    acked = {}  # mid: the reason codes of its SUBACK
    changed = threading.Condition()

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        with changed:
            acked[mid] = reason_codes
            changed.notify_all()

    client.on_subscribe = on_subscribe
    mid = client.subscribe([(f, 1) for f in filters])[1]
    marker_mid = client.subscribe(marker_filter, 0)[1]
    with changed:
        if not changed.wait_for(lambda: marker_mid in acked, timeout):
            raise LuxnodeError(f"no SUBACK within {timeout:g} s; is the broker overloaded?")
    refused = [f for f, code in zip(filters, acked.get(mid) or ()) if code.is_failure]
    refused += [marker_filter] if any(code.is_failure for code in acked[marker_mid]) else []
    if refused:  # an ACL that does not let this account read them: watching would show nothing
        raise LuxnodeError(f"the broker refused the subscription to {', '.join(refused)}: this account may "
                           "not read those topics (check its ACL, or use the lab's operator account)")
