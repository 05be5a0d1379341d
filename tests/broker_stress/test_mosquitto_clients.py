"""Interop: the Debian C clients (mosquitto_pub/mosquitto_sub) against `luxnode broker`, with
plain, password_file (hashed by mosquitto_passwd), acl_file and TLS-PSK connections."""

import secrets
import subprocess

import pytest

from tests.support.net import wait_for

from .cclients import Sub, pub, require_clients


@pytest.fixture(autouse=True)
def _clients():
    require_clients()


@pytest.fixture
def subs():
    started = []

    def start(*args) -> Sub:
        sub = Sub(*args)
        started.append(sub)
        return sub

    yield start
    for sub in started:
        sub.stop()


def test_plain_qos_0_1_2_and_retained(luxnode_broker, subs):
    broker = luxnode_broker("allow_anonymous true\n")
    sub = subs(broker.port, "lab/#", "-q", "2")
    assert "Subscribed (mid: 1): 2" in sub.wait_subscribed()
    for qos in (0, 1, 2):
        done = pub(broker.port, f"lab/q{qos}", f"hello-{qos}", "-q", str(qos))
        assert done.returncode == 0, done.stderr
        sub.wait_message(f"lab/q{qos} hello-{qos}")
    assert pub(broker.port, "lab/kept", "retained-1", "-r", "-q", "1").returncode == 0
    late = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "lab/kept",
                           "-v", "-C", "1", "-W", "10"], capture_output=True, text=True, timeout=20)
    assert late.stdout.strip() == "lab/kept retained-1"


@pytest.fixture
def password_file(tmp_path):
    """A password_file written by mosquitto's own mosquitto_passwd: the hashes must interoperate."""
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "alice", "alice-pw"], check=True, timeout=30)
    subprocess.run(["mosquitto_passwd", "-b", str(path), "bob", "bob-pw"], check=True, timeout=30)
    return path


def test_password_file_from_mosquitto_passwd(luxnode_broker, subs, password_file):
    broker = luxnode_broker(f"allow_anonymous false\npassword_file {password_file}\n")
    sub = subs(broker.port, "lab/#", "-u", "bob", "-P", "bob-pw", "-q", "1")
    assert "Subscribed (mid: 1): 1" in sub.wait_subscribed()
    done = pub(broker.port, "lab/in", "from-alice", "-u", "alice", "-P", "alice-pw", "-q", "1")
    assert done.returncode == 0, done.stderr
    sub.wait_message("lab/in from-alice")

    wrong = pub(broker.port, "lab/in", "wrong-password", "-u", "alice", "-P", "nope")
    anonymous = pub(broker.port, "lab/in", "anonymous")
    unknown = pub(broker.port, "lab/in", "unknown-user", "-u", "mallory", "-P", "alice-pw")
    for refused in (wrong, anonymous, unknown):
        assert refused.returncode != 0
        assert "Connection Refused" in refused.stderr, refused.stderr
    # A marker after the refused attempts proves none of them slipped through.
    assert pub(broker.port, "lab/in", "marker", "-u", "alice", "-P", "alice-pw", "-q", "1").returncode == 0
    sub.wait_message("lab/in marker")
    assert [m for m in sub.messages() if m != "lab/in from-alice"] == ["lab/in marker"]


def test_acl_allow_deny_and_pattern(luxnode_broker, subs, password_file, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text(
        "user alice\ntopic readwrite lab/#\ntopic read nodes/#\n\n"
        "user bob\ntopic read lab/#\n\n"
        "pattern write nodes/%u/#\n"
    )
    broker = luxnode_broker(f"allow_anonymous false\npassword_file {password_file}\nacl_file {acl}\n")
    alice = subs(broker.port, "lab/#", "-t", "nodes/#", "-u", "alice", "-P", "alice-pw", "-q", "1")
    assert "Subscribed (mid: 1): 1, 1" in alice.wait_subscribed()

    denied_sub = subs(broker.port, "secret/#", "-u", "bob", "-P", "bob-pw", "-q", "1")
    assert "Subscribed (mid: 1): 128" in denied_sub.wait_subscribed()

    # bob may not write lab/#; his message is dropped, the marker after it arrives.
    assert pub(broker.port, "lab/x", "denied-by-acl", "-u", "bob", "-P", "bob-pw", "-q", "1").returncode == 0
    assert pub(broker.port, "nodes/alice/light", "not-bobs-node", "-u", "bob", "-P", "bob-pw").returncode == 0
    assert pub(broker.port, "nodes/bob/light", "42", "-u", "bob", "-P", "bob-pw", "-q", "1").returncode == 0
    alice.wait_message("nodes/bob/light 42")
    assert pub(broker.port, "lab/x", "allowed", "-u", "alice", "-P", "alice-pw", "-q", "1").returncode == 0
    alice.wait_message("lab/x allowed")
    assert alice.messages() == ["nodes/bob/light 42", "lab/x allowed"]


PSK_KEY = secrets.token_hex(32)


@pytest.fixture
def psk_broker(luxnode_broker, tmp_path):
    psk_file = tmp_path / "psk"
    psk_file.write_text(f"node-1:{PSK_KEY}\n")
    psk_file.chmod(0o600)
    return luxnode_broker(f"psk_hint luxnode-lab\npsk_file {psk_file}\nallow_anonymous true\n")


def test_psk_identity_and_key(psk_broker, subs):
    psk = ("--psk", PSK_KEY, "--psk-identity", "node-1")
    sub = subs(psk_broker.port, "luxnode/node-1/#", *psk, "-i", "watcher", "-q", "1")
    assert "Subscribed (mid: 1): 1" in sub.wait_subscribed()
    done = pub(psk_broker.port, "luxnode/node-1/light", '{"light": 42.5}', *psk, "-q", "1")
    assert done.returncode == 0, done.stderr
    sub.wait_message('luxnode/node-1/light {"light": 42.5}')


def test_psk_listener_refuses_wrong_key_and_plain_text(psk_broker, subs):
    psk = ("--psk", PSK_KEY, "--psk-identity", "node-1")
    sub = subs(psk_broker.port, "luxnode/#", *psk, "-i", "watcher")
    sub.wait_subscribed()
    wrong_key = pub(psk_broker.port, "luxnode/node-1/light", "wrong-key", "--psk", "00" * 32,
                    "--psk-identity", "node-1")
    unknown_identity = pub(psk_broker.port, "luxnode/node-1/light", "unknown-id", "--psk", PSK_KEY,
                           "--psk-identity", "node-2")
    plain = pub(psk_broker.port, "luxnode/node-1/light", "plain-text")
    for refused in (wrong_key, unknown_identity, plain):
        assert refused.returncode != 0, refused
    assert pub(psk_broker.port, "luxnode/node-1/light", "marker", *psk, "-q", "1").returncode == 0
    sub.wait_message("luxnode/node-1/light marker")
    assert sub.messages() == ["luxnode/node-1/light marker"]
    assert psk_broker.alive()


def test_psk_identity_as_username_with_acl_patterns(luxnode_broker, subs, tmp_path):
    """The lab's setup: PSK identity = username = device id, so `pattern ... %u` rules
    confine each node to its own topics."""
    keys = {"node-1": secrets.token_hex(32), "operator": secrets.token_hex(32)}
    psk_file = tmp_path / "psk"
    psk_file.write_text("".join(f"{identity}:{key}\n" for identity, key in keys.items()))
    acl = tmp_path / "acl"
    acl.write_text("user operator\ntopic read luxnode/#\ntopic write luxnode/+/set\n\n"
                   "pattern write luxnode/%u/#\npattern read luxnode/%u/set\n")
    broker = luxnode_broker(f"psk_hint luxnode-lab\npsk_file {psk_file}\nuse_identity_as_username true\n"
                            f"allow_anonymous false\nacl_file {acl}\n")

    def psk(identity):
        return ("--psk", keys[identity], "--psk-identity", identity)

    operator = subs(broker.port, "luxnode/#", *psk("operator"), "-i", "operator-watch", "-q", "1")
    assert "Subscribed (mid: 1): 1" in operator.wait_subscribed()
    node = subs(broker.port, "luxnode/node-1/set", "-t", "luxnode/node-2/set", *psk("node-1"), "-i", "node-1-cmd",
                "-q", "1")
    assert "Subscribed (mid: 1): 1, 128" in node.wait_subscribed()

    assert pub(broker.port, "luxnode/node-2/light", "spoofed", *psk("node-1"), "-q", "1").returncode == 0
    assert pub(broker.port, "luxnode/node-1/light", "50", *psk("node-1"), "-q", "1").returncode == 0
    operator.wait_message("luxnode/node-1/light 50")
    assert pub(broker.port, "luxnode/node-1/set", '{"control":"ON"}', *psk("operator"), "-q", "1").returncode == 0
    node.wait_message('luxnode/node-1/set {"control":"ON"}')
    operator.wait_message('luxnode/node-1/set {"control":"ON"}')
    assert "luxnode/node-2/light spoofed" not in operator.messages()


def test_failed_psk_handshake_is_logged(psk_broker):
    """A node with a wrong key or an unknown identity must leave a line in the broker's log
    that names the peer and the TLS failure: otherwise nothing tells the operator why it
    cannot connect (mosquitto logs "OpenSSL Error" and the disconnect)."""
    before = psk_broker.log_text()
    refused = pub(psk_broker.port, "luxnode/node-1/light", "x", "--psk", "00" * 32, "--psk-identity", "node-1")
    assert refused.returncode != 0

    def logged() -> list[str]:
        new = psk_broker.log_text()[len(before):].splitlines()
        return [line for line in new if "127.0.0.1" in line
                and any(word in line.lower() for word in ("tls", "ssl", "psk", "handshake"))]

    try:
        wait_for(logged, timeout=5, what="a log line about the failed TLS-PSK handshake")
    except TimeoutError:
        pytest.fail(f"no log line names the failed handshake; the log got:\n{psk_broker.log_text()[len(before):]}")
