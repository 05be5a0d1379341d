"""MQTT 3.1.1 encoder and stream splitter (lux.mqttpkt) on the MicroPython unix port."""

import json
import re

from tests.support.micropython import run

PRELUDE = """
import json
import re
from lux import mqttpkt as P
buf = bytearray(256)
def enc(fn, *a):
    n = fn(buf, *a)
    return bytes(buf[:n]).hex()
"""


def mp(code):
    return json.loads(run(PRELUDE + code).strip().splitlines()[-1])


def test_connect_with_credentials_and_will():
    got = mp("""print(json.dumps(enc(P.connect, b"cid", b"u", b"pw", 60, False, (b"t/s", b"offline", True, 1))))""")
    body = (
        "00044d515454" "04" "ec" "003c"  # "MQTT", level 4, flags user|pass|will retain|will qos1|will, keepalive 60
        "0003636964" "0003742f73" "00076f66666c696e65" "000175" "00027077"
    )
    assert got == "10" + "%02x" % (len(body) // 2) + body


def test_connect_clean_session_without_credentials():
    got = mp("""print(json.dumps(enc(P.connect, b"c", None, None, 0, True, None)))""")
    assert got == "100d00044d51545404020000" + "000163"


def test_publish_subscribe_and_acks():
    got = mp("""
print(json.dumps([
    enc(P.publish_head, b"a/b", 5, 1, True, True, 10),
    enc(P.publish_head, b"a", 200, 0, False, False, 0),
    enc(P.subscribe, 7, b"x/set", 1),
    enc(P.ack, 0x40, 258), enc(P.ack, 0x50, 1), enc(P.ack, 0x62, 1), enc(P.ack, 0x70, 1),
]))""")
    assert got == [
        "3b0c" "0003612f62" "000a",  # dup|qos1|retain, remaining 2+3+2+5
        "30cb01" "000161",  # remaining 203 takes two bytes
        "820a" "0007" "0005782f736574" "01",
        "40020102", "50020001", "62020001", "70020001",
    ]


def test_remaining_length_boundaries():
    got = mp("""
out = []
for n in (0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455):
    k = P.put_len(buf, 0, n)
    out.append(bytes(buf[:k]).hex())
print(json.dumps(out))""")
    assert got == ["00", "7f", "8001", "ff7f", "808001", "ffff7f", "80808001", "ffffff7f"]


SPLIT = """
r = P.Reader(%d)
seen = []
def h(first, body, rem):
    seen.append([first, bytes(body).hex(), rem])
data = bytes.fromhex(%r)
i = 0
for step in %r:
    while i < len(data):
        sp = r.space()
        k = min(step, len(sp), len(data) - i)
        sp[:k] = data[i:i + k]
        i += k
        r.got(k)
        r.parse(h)
print(json.dumps([seen, r.n, r.skip]))
"""

STREAM = (
    "d000"  # PINGRESP
    "3007" "0001" "74" "6869" "2121"  # PUBLISH qos0 't' 'hi!!'
    "3206" "0001" "74" "0005" "6f"  # PUBLISH qos1 pid 5 'o'
    "4002" "0005"  # PUBACK 5
)


def test_splits_a_stream_fed_byte_by_byte_or_at_once():
    for step in (1, 3, 100):
        seen, left, skip = mp(SPLIT % (64, STREAM, [step]))
        assert seen == [
            [0xD0, "", 0], [0x30, "0001746869" "2121", 7], [0x32, "000174" "0005" "6f", 6], [0x40, "0005", 2],
        ], step
        assert (left, skip) == (0, 0)


def test_oversize_publish_is_handed_over_truncated_and_skipped_in_step():
    big = "3" + "2" + "c801" + "0001" + "74" + "0009" + "41" * 195  # qos1, remaining 200
    after = "3005" "0001" "74" "6f6b"  # then a normal PUBLISH 'ok'
    for step in (1, 7, 1000):
        seen, left, skip = mp(SPLIT % (32, big + after, [step]))
        first, head, rem = seen[0]
        assert first == 0x32 and rem == 200
        assert head.startswith("0001740009") and len(head) // 2 <= 32
        assert seen[1:] == [[0x30, "000174" "6f6b", 5]], step
        assert (left, skip) == (0, 0)


def test_bad_remaining_length_is_a_protocol_error():
    out = run(PRELUDE + """
r = P.Reader(16)
sp = r.space(); sp[:6] = b"\\x30\\xff\\xff\\xff\\xff\\x01"; r.got(6)
try:
    r.parse(lambda *a: None)
except P.ProtocolError as e:
    print("error", e)
""")
    assert "error bad remaining length" in out


def test_the_connection_set_up_shares_the_clients_states():
    """lux.mqttconn repeats lux.mqtt's state and timeout const()s (folded in at compile time,
    so they cost the board no qstr): the two must agree."""
    from tests.support.micropython import FIRMWARE

    def consts(name):
        text = (FIRMWARE / "lux" / name).read_text()
        return dict(re.findall(r"^(_?[A-Z][A-Z_]*) = const\((\w+)\)", text, re.M))

    client, setup = consts("mqtt.py"), consts("mqttconn.py")
    shared = {"_DOWN", "_TCP", "_WAIT", "_CONNECT_MS"}
    assert shared <= setup.keys() and shared <= client.keys()
    assert {k: setup[k] for k in shared} == {k: client[k] for k in shared}
