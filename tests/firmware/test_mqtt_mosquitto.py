"""lux.mqtt on the MicroPython unix port against real mosquitto and mosquitto-clients."""

import subprocess

import pytest

from tests.firmware.certs import make_ca_and_server
from tests.firmware.client import MPClient
from tests.firmware.node import needs_cert_check, needs_psk
from tests.support.micropython import FAITHFUL
from tests.support.net import wait_for
from tests.support.sntp import SNTPServer

PSK_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


@pytest.fixture
def clients():
    started = []

    def start(**args):
        c = MPClient(**args)
        started.append(c)
        return c

    yield start
    for c in started:
        c.close()


@pytest.fixture
def sntp():
    server = SNTPServer()
    yield server
    server.close()


def pub(broker, topic, message, qos=0, *extra):
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", topic, "-q", str(qos), *extra,
                    "-m" if message is not None else "-n", *([message] if message is not None else [])],
                   check=True, timeout=10)


def sub(broker, topic, count, *extra):
    return subprocess.Popen(["mosquitto_sub", "-p", str(broker.port), "-t", topic, "-C", str(count), "-v",
                             "-W", "10", *extra], stdout=subprocess.PIPE, text=True)


def test_connect_subscribe_receive_qos0_1_2(mosquitto, clients):
    broker = mosquitto("allow_anonymous true\n")
    c = clients(port=broker.port, client_id="mp-recv", subs=[["t/set", 2]])
    c.expect("connected 1")
    wait_for(lambda: "mp-recv 2 t/set" in broker.log_text(), what="SUBSCRIBE at the broker")
    for qos in (0, 1, 2):
        pub(broker, "t/set", f"q{qos}", qos)
        assert c.expect("msg") == f"msg t/set 2 {f'q{qos}'.encode().hex()}"
    for step in ("PUBACK", "PUBREC", "PUBCOMP"):  # the QoS 1 and QoS 2 flows completed
        wait_for(lambda: f"Received {step} from mp-recv" in broker.log_text(), what=step)
    assert "(p2, c1, k60)" in broker.log_text()  # MQTT 3.1.1, clean session, keepalive 60


def test_credentials_and_retained_last_will(mosquitto, clients, tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("node:secret\n")
    subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True)
    broker = mosquitto(f"allow_anonymous false\npassword_file {passwd}\n")
    bad = clients(port=broker.port, client_id="mp-bad", user="node", password="wrong")
    assert "connection refused: not authorised" in bad.expect("log mqtt error")  # mosquitto 2 answers 5
    c = clients(port=broker.port, client_id="mp-will", user="node", password="secret", keepalive=2,
                will=["n/status", "offline", True, 1])
    c.expect("connected 1")
    c.proc.kill()  # no DISCONNECT: the broker publishes the will
    wait_for(lambda: "Client mp-will closed its connection" in broker.log_text()
             or "Socket error on client mp-will" in broker.log_text(), what="the broker to see the client gone")
    got = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-u", "node", "-P", "secret",
                          "-t", "n/status", "-C", "1", "-v", "-W", "10", "--retained-only"],
                         capture_output=True, text=True, timeout=15)
    assert got.stdout.strip() == "n/status offline"


def test_publish_qos1_and_oversize_skipped(mosquitto, clients):
    broker = mosquitto("allow_anonymous true\n")
    c = clients(port=broker.port, client_id="mp-pub", subs=[["t/in", 1]], rx_buffer=128)
    c.expect("connected 1")
    s = sub(broker, "t/out", 1)
    wait_for(lambda: broker.log_text().count("Sending SUBACK") >= 2, what="both subscriptions")
    c.send("pub t/out 1 1 hello")
    assert s.communicate(timeout=15)[0].strip() == "t/out hello"
    wait_for(lambda: "Received PUBLISH from mp-pub (d0, q1, r1" in broker.log_text(), what="QoS 1 retained")
    wait_for(lambda: c.send("inflight") or c.expect("inflight") == "inflight 0", what="the PUBACK")
    pub(broker, "t/in", "x" * 1000, 1)
    pub(broker, "t/in", "after", 1)
    line = c.expect("msg")
    assert line.startswith("msg t/in 1000 ")  # handed over truncated, with its real size
    assert len(bytes.fromhex(line.split()[3])) < 128
    assert c.expect("msg") == "msg t/in 5 " + b"after".hex()  # the stream stayed in step
    wait_for(lambda: broker.log_text().count("Received PUBACK from mp-pub") == 2, what="PUBACK of both")


def test_qos1_published_offline_goes_out_after_reconnect(mosquitto, clients):
    broker = mosquitto("allow_anonymous true\n")
    c = clients(port=broker.port, client_id="mp-retx", clean=False, backoff_max_ms=1000, subs=[["r/set", 1]])
    c.expect("connected 1")
    broker.kill()
    assert "connection lost" in c.expect("log mqtt error", timeout=10)
    c.send("pub t/q 1 0 kept")  # broker away: the QoS 1 message waits
    assert c.expect("published") == "published True"
    for state in ("old", "new"):  # a newer retained message supersedes the older one
        c.send(f"pub t/state 1 1 {state}")
        assert c.expect("published") == "published True"
    c.send("inflight")
    assert c.expect("inflight") == "inflight 2"
    broker.start()
    c.expect("connected 2", timeout=15)
    # Never sent before: no DUP flag (MQTT-3.3.1-1); tests/firmware/test_keepalive.py checks a resend.
    wait_for(lambda: "Received PUBLISH from mp-retx (d0, q1, r0" in broker.log_text(), what="the queued message")
    wait_for(lambda: "Received PUBLISH from mp-retx (d0, q1, r1" in broker.log_text(), what="the retained one")
    assert broker.log_text().count("Received PUBLISH from mp-retx") == 2
    wait_for(lambda: c.send("inflight") or c.expect("inflight") == "inflight 0", what="the PUBACK")
    # The restarted broker kept no session: the subscription came back with the CONNACK.
    pub(broker, "r/set", "again", 1)
    assert c.expect("msg") == "msg r/set 5 " + b"again".hex()


@needs_psk
def test_tls_psk_against_mosquitto_and_wrong_key_refused(mosquitto, clients, tmp_path):
    psk = tmp_path / "psk"
    psk.write_text(f"node-1:{PSK_KEY}\n")
    broker = mosquitto(f"allow_anonymous true\npsk_hint luxnode\npsk_file {psk}\n")
    c = clients(port=broker.port, client_id="mp-psk", psk_identity="node-1", psk_key=PSK_KEY, subs=[["p/set", 1]])
    c.expect("connected 1")
    pub(broker, "p/set", "over psk", 1, "--psk", PSK_KEY, "--psk-identity", "node-1")
    assert c.expect("msg") == "msg p/set 8 " + b"over psk".hex()
    bad = clients(port=broker.port, client_id="mp-badpsk", psk_identity="node-1", psk_key="ff" * 32)
    err = bad.expect("log mqtt error")
    assert "MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE" in err and "retry" in err  # the broker refused the key
    assert "mp-badpsk" not in broker.log_text()  # never got as far as CONNECT


@needs_cert_check
def test_tls_certificate_mode_verifies_the_broker(mosquitto, clients, sntp, tmp_path):
    ca, cert, key = make_ca_and_server(tmp_path)
    broker = mosquitto(f"allow_anonymous true\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n")
    # On a faithful chip the clock first (it starts at 2000-01-01); the plain unix port has the host's.
    ntp = f"127.0.0.1:{sntp.port}" if FAITHFUL else None
    c = clients(port=broker.port, host="127.0.0.1", client_id="mp-cert", ca=str(ca), subs=[["c/set", 1]],
                ntp_server=ntp)
    c.expect("connected 1")
    other = tmp_path / "other"
    other.mkdir()
    wrong_ca = make_ca_and_server(other, "some other CA")[0]
    bad = clients(port=broker.port, host="127.0.0.1", client_id="mp-wrongca", ca=str(wrong_ca), ntp_server=ntp)
    line = bad.expect("log mqtt error")
    assert "not correctly signed by the trusted CA" in line and "retry" in line, line
    assert "mp-wrongca" not in broker.log_text()  # refused before any MQTT, never in plain text


@pytest.mark.skipif(FAITHFUL != "esp8266", reason="axTLS is the tls of the faithful ESP8266 build alone")
def test_on_the_esp8266_the_client_meets_the_chips_tls(clients, tmp_path):
    """The client-level tests run with the chip's board: on an ESP8266 its axTLS, where the
    firmware refuses TLS-PSK and certificate mode before any byte goes out."""
    ca, _, _ = make_ca_and_server(tmp_path)
    for args, refusal in (({"psk_identity": "node-1", "psk_key": PSK_KEY}, "has no TLS-PSK"),
                          ({"ca": str(ca)}, "cannot verify a certificate (axTLS)")):
        c = clients(port=1, **args)
        assert c.wait_exit() != 0
        assert refusal in "\n".join(c.seen), c.seen
