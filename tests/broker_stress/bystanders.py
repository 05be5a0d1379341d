"""Two well-behaved paho clients that prove the broker still delivers while others misbehave."""

import itertools
import threading

import paho.mqtt.client as mqtt

PROBE_TOPIC = "probe/bystander"


class Bystanders:
    """A paho publisher and a paho subscriber on PROBE_TOPIC; ``probe()`` sends one QoS 1
    message and waits (bounded) until the subscriber has it."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None):
        self.port = port
        self.credentials = (username, password)
        self.received: set[bytes] = set()
        self.cond = threading.Condition()
        self.counter = itertools.count()
        self.sub = self._client("bystander-sub")
        self.sub.on_message = self._on_message
        subscribed = threading.Event()
        self.sub.on_subscribe = lambda *args: subscribed.set()
        self._connect(self.sub)
        self.sub.subscribe(PROBE_TOPIC, qos=1)
        if not subscribed.wait(10):
            raise TimeoutError("bystander subscriber got no SUBACK within 10 s")
        self.pub = self._client("bystander-pub")
        self._connect(self.pub)

    def _client(self, client_id: str) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                             reconnect_on_failure=False)
        if self.credentials[0] is not None:
            client.username_pw_set(*self.credentials)
        return client

    def _connect(self, client: mqtt.Client) -> None:
        connected = threading.Event()
        client.on_connect = lambda c, u, flags, reason, props: reason == 0 and connected.set()
        client.connect("127.0.0.1", self.port, keepalive=60)
        client.loop_start()
        if not connected.wait(10):
            raise TimeoutError(f"{client._client_id!r} got no CONNACK within 10 s")

    def _on_message(self, client, userdata, message) -> None:
        with self.cond:
            self.received.add(message.payload)
            self.cond.notify_all()

    def probe(self, timeout: float = 5.0) -> None:
        """One message from the paho publisher must reach the paho subscriber."""
        payload = b"probe-%d" % next(self.counter)
        info = self.pub.publish(PROBE_TOPIC, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError(f"bystander publisher lost its connection (rc {info.rc})")
        with self.cond:
            if not self.cond.wait_for(lambda: payload in self.received, timeout):
                raise AssertionError(f"bystander subscriber did not get {payload!r} within {timeout} s")

    def close(self) -> None:
        for client in (self.pub, self.sub):
            client.disconnect()
            client.loop_stop()
