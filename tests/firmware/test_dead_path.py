"""lux.mqtt on a path that stays open but answers nothing (the scripted broker of
test_keepalive, which reads every packet and sends nothing after CONNACK): the client writes at
most 6 segments without an answer (below the ESP8266's TCP_SND_QUEUELEN of 8), then one
PINGREQ, then nothing, and ends the connection 10 s later; what it queued at QoS 1 goes out
after the reconnect. The broker's side shows what was written."""

from tests.firmware.client import MPClient
from tests.firmware.test_keepalive import scripted  # noqa: F401 (fixture)
from tests.support.net import wait_for


def test_writes_stop_at_the_bound_then_a_pingreq_and_the_silence_ends_the_connection(scripted):
    broker = scripted(answer_pings=False)
    client = MPClient(port=broker.port, keepalive=60, backoff_max_ms=1000)  # the keepalive alone: 60 s
    try:
        client.expect("connected 1")
        answers = []
        for i in range(9):
            client.send(f"pub t/a 0 0 m{i}")
            answers.append(client.expect("published"))
        client.send("pub t/q 1 0 queued")  # held: waits in the inflight queue
        assert client.expect("published") == "published True"
        # CONNECT, then 6 QoS 0 PUBLISHes, then the PINGREQ that asks; nothing more.
        wait_for(lambda: [k for _, n, k in broker.events if n == 1][-1:] == [0xC0], what="the PINGREQ")
        assert answers == ["published True"] * 6 + ["published False"] * 3
        line = client.expect("log mqtt error", timeout=15)
        assert "no PINGRESP, writes held" in line, line
        first = [(t, k) for t, n, k in broker.events if n == 1]
        assert [k for _, k in first] == [0x10] + [0x30] * 6 + [0xC0]
        client.expect("connected 2", timeout=5)
        wait_for(lambda: 0x32 in [k for _, n, k in broker.events if n == 2], what="the queued QoS 1 message")
        # first written on this connection: no DUP (MQTT-3.3.1-1)
        assert [k for _, n, k in broker.events if n == 2] == [0x10, 0x32]
    finally:
        client.close()


def test_a_short_keepalive_ends_a_held_connection_sooner(scripted):
    keepalive = 4  # half of it, 2 s, is shorter than the 10 s a held PINGREQ gets
    broker = scripted(answer_pings=False)
    client = MPClient(port=broker.port, keepalive=keepalive, backoff_max_ms=1000)
    try:
        client.expect("connected 1")
        for i in range(7):
            client.send(f"pub t/a 0 0 m{i}")
            client.expect("published")
        wait_for(lambda: 0xC0 in [k for _, n, k in broker.events if n == 1], what="the PINGREQ")
        assert "no PINGRESP" in client.expect("log mqtt error", timeout=10)
        client.expect("connected 2", timeout=5)
        ping_at = [t for t, n, k in broker.events if n == 1 and k == 0xC0][0]
        reconnect = [t for t, n, k in broker.events if n == 2][0]
        assert reconnect - ping_at < keepalive / 2 + 1.0 + 0.7  # half a keepalive, then the backoff
    finally:
        client.close()
