"""An in-process luxnode broker on ephemeral ports, and paho clients for it."""

import socket
import threading

import paho.mqtt.client as mqtt
import pytest

from luxnode.broker.background import BackgroundBroker
from luxnode.broker.log import Log
from luxnode.mqtt import Decoder, encoder
from luxnode.mqtt.packets import Connect
from luxnode.mosquitto.conf import BrokerConfig, ListenerConfig
from tests.support.net import wait_for


class LogLines:
    """A thread-safe stream the broker logs to; tests wait for lines in it."""

    def __init__(self):
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self._lines.append(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def wait(self, fragment: str, timeout: float = 5) -> str:
        wait_for(lambda: fragment in self.text, timeout, what=f"log line with {fragment!r}")
        return self.text


def make_config(**settings) -> BrokerConfig:
    listeners = settings.pop("listeners", None) or [ListenerConfig(0, "127.0.0.1", allow_anonymous=True)]
    settings.setdefault("sys_interval", 0)
    return BrokerConfig(listeners=listeners, **settings)


@pytest.fixture
def start_broker():
    """``start_broker(**BrokerConfig fields)`` -> BackgroundBroker with ``.log`` (LogLines)."""
    running = []

    def start(**settings) -> BackgroundBroker:
        lines = LogLines()
        broker = BackgroundBroker(make_config(**settings), log=Log({"all"}, lines))
        broker.log = lines
        running.append(broker.start())
        return broker

    yield start
    for broker in running:
        broker.stop()


@pytest.fixture
def broker(start_broker):
    return start_broker()


# paho 2 reports MQTT 3.1.1 CONNACK return codes as MQTT 5 reason codes; map them back.
V3_RETURN_CODES = {132: 1, 133: 2, 136: 3, 134: 4, 135: 5}


class Client:
    """A paho client that records what it receives; every wait is bounded."""

    def __init__(self, port: int, client_id: str = "", clean_session: bool = True, keepalive: int = 60,
                 transport: str = "tcp", protocol=mqtt.MQTTv311, will=None, username=None, password=None):
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.connack = None
        self.disconnected = threading.Event()
        self.subacks: dict[int, list[int]] = {}
        self.acked: set[int] = set()
        self.paho = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                clean_session=clean_session, protocol=protocol, transport=transport,
                                reconnect_on_failure=False)
        if will:
            self.paho.will_set(*will)
        if username:
            self.paho.username_pw_set(username, password)
        self.paho.on_message = self._on_message
        self.paho.on_connect = self._on_connect
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.paho.on_publish = lambda c, u, mid, rc, p: self.acked.add(mid)
        self.port = port
        self.keepalive = keepalive

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append(message)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = (flags.session_present, V3_RETURN_CODES.get(reason_code.value, reason_code.value))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subacks[mid] = [code.value for code in reason_codes]

    def connect(self, expect_code: int = 0) -> "Client":
        self.paho.connect("127.0.0.1", self.port, keepalive=self.keepalive)
        self.paho.loop_start()
        wait_for(lambda: self.connack is not None, 5, what="CONNACK")
        assert self.connack[1] == expect_code, self.connack
        return self

    def subscribe(self, topic, qos: int = 0) -> list[int]:
        result, mid = self.paho.subscribe(topic, qos)
        return wait_for(lambda: self.subacks.get(mid), 5, what="SUBACK")

    def publish(self, topic: str, payload=b"", qos: int = 0, retain: bool = False, wait: bool = True):
        info = self.paho.publish(topic, payload, qos, retain)
        if wait and qos:
            wait_for(lambda: info.mid in self.acked, 5, what=f"ack of QoS {qos} publish")
        return info

    def received(self, count: int, timeout: float = 5) -> list[mqtt.MQTTMessage]:
        wait_for(lambda: len(self.messages) >= count, timeout, what=f"{count} messages (have {len(self.messages)})")
        with self.lock:
            return list(self.messages)

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [m.payload for m in self.messages]

    def disconnect(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()

    def drop(self) -> None:
        """Vanish without DISCONNECT (as a node losing power)."""
        self.paho.socket().shutdown(socket.SHUT_RDWR)
        self.disconnected.wait(5)
        self.paho.loop_stop()


@pytest.fixture
def clients():
    """``clients(port, ...)`` -> Client (connected with ``.connect()``); all stopped at the end."""
    made = []

    def make(port, **options) -> Client:
        client = Client(port, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.paho.disconnect()  # wakes paho's loop thread, so loop_stop returns at once
        client.paho.loop_stop()


class RawClient:
    """A bare socket speaking bytes, for what paho refuses to send."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.decoder = Decoder(server=False)
        self.packets: list = []

    def send(self, data: bytes) -> "RawClient":
        self.sock.sendall(data)
        return self

    def connect(self, client_id: str = "raw", **fields) -> "RawClient":
        self.send(encoder.connect(Connect(client_id=client_id, **fields)))
        connack = self.next_packet()
        assert connack.return_code == 0, connack
        return self

    def next_packet(self):
        while not self.packets:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the broker")
            self.packets += self.decoder.feed(data)
        return self.packets.pop(0)

    def closed_by_broker(self) -> bool:
        """True once the broker has closed the connection (anything sent before is skipped)."""
        try:
            while True:
                self.next_packet()
        except ConnectionError:  # a timeout (still open) propagates and fails the test
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_clients():
    made = []

    def make(port: int) -> RawClient:
        made.append(RawClient(port))
        return made[-1]

    yield make
    for client in made:
        client.close()
