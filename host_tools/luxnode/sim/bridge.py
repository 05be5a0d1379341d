"""The sim/ambient topic: a paho client beside each node forwards the ambient light to its board.

The firmware never sees this topic. The client subscribes to
``{prefix}/{device_id}/sim/ambient``; a number there is the new ambient light %.
Against the lab's broker it logs in as the lab's operator on the password
listener: the node listener gives each identity one connection
(use_username_as_clientid), so a second client with the node's own key would
take the node over. Against any other broker it uses the node's own credentials
(client id ``<client_id>-sim``).
"""

import ssl
from pathlib import Path

from luxnode.errors import LuxnodeError
from luxnode.psk import client_context


def tls_context(mqtt: dict, fs: Path | None = None) -> ssl.SSLContext | None:
    """The TLS context the node's config asks for; None for plain MQTT."""
    tls = mqtt.get("tls") or {}
    mode = tls.get("mode")
    if not mode:
        return None
    if mode == "psk":
        try:
            key = bytes.fromhex(tls["key"])
        except (KeyError, ValueError):
            raise LuxnodeError("config.json: mqtt.tls.key must be the PSK in hex") from None
        return client_context(tls.get("identity") or "", key)
    if mode == "cert":
        ca = tls.get("ca")
        return ssl.create_default_context(cafile=str((fs or Path()) / ca) if ca else None)
    raise LuxnodeError(f"config.json: unknown mqtt.tls.mode {mode!r}; use 'psk', 'cert' or leave tls out")


def lab_operator(mqtt: dict) -> dict | None:
    """The lab registry's operator account on its password listener, when ``mqtt`` is the
    lab's node listener on this machine; None otherwise."""
    from luxnode.operator.connect import load_registry

    registry = load_registry()
    broker, operator = registry.get("broker") or {}, registry.get("operator") or {}
    # A lab started with --bind listens on its address alone, which it records as the broker's host.
    lab_node_listener = (mqtt.get("host") in ("127.0.0.1", "localhost", "::1", broker.get("host"))
                         and broker.get("psk_port") == int(mqtt.get("port", 0)))
    if not (lab_node_listener and operator.get("username") and broker.get("password_port")):
        return None
    return {"host": mqtt["host"], "port": broker["password_port"], "prefix": mqtt.get("prefix", "luxnode"),
            "username": operator["username"], "password": operator.get("password"),
            "client_id": mqtt.get("client_id")}


class AmbientBridge:
    def __init__(self, config: dict, set_ambient, log, fs: Path | None = None):
        mqtt = config.get("mqtt", {})
        self.topic = f"{mqtt.get('prefix', 'luxnode')}/{config.get('device_id')}/sim/ambient"
        self.mqtt = lab_operator(mqtt) or mqtt
        self.set_ambient = set_ambient
        self.log = log
        self.fs = fs
        self.client = None
        self.told = False

    def start(self):
        import paho.mqtt.client as paho

        client_id = (self.mqtt.get("client_id") or "luxnode") + "-sim"
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        if self.mqtt.get("username"):
            client.username_pw_set(self.mqtt["username"], self.mqtt.get("password"))
        ctx = tls_context(self.mqtt, self.fs)
        if ctx:
            client.tls_set_context(ctx)
        client.reconnect_delay_set(0.1, 2)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.connect_async(self.mqtt.get("host", "127.0.0.1"), int(self.mqtt.get("port", 1883)), keepalive=30)
        client.loop_start()
        self.client = client

    def stop(self):
        if self.client:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None

    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            self._unavailable(f"the broker refused the connection ({reason})")
            return
        self.told = False
        client.subscribe(self.topic, qos=1)

    def _on_connect_fail(self, client, userdata):
        self._unavailable("cannot connect to the broker")

    def _unavailable(self, why):
        if not self.told:  # once per outage: paho keeps retrying
            self.told = True
            self.log(f"sim: {self.topic} unavailable: {why}; retrying")

    def _on_message(self, client, userdata, msg):
        text = msg.payload.decode(errors="replace").strip()
        try:
            percent = float(text)
        except ValueError:
            percent = None
        if percent is None or not 0 <= percent <= 100:
            self.log(f"sim: ignored ambient {text[:32]!r}: expected a number from 0 to 100")
            return
        self.set_ambient(percent)
        self.log(f"sim: ambient {percent:g} %")
