"""sqlite persistence: retained messages and persistent sessions survive a restart and kill -9."""

import os
import signal
import sqlite3
import subprocess
import sys

from luxnode.broker.session import UNCLAIMED, Session
from luxnode.broker.store import Store
from luxnode.mqtt import encoder
from luxnode.mqtt.packets import Connect
from tests.support.net import free_port, port_open, wait_for

from .conftest import RawClient


def persistent_settings(tmp_path, autosave_interval=0):
    return dict(persistence=True, persistence_location=tmp_path, autosave_interval=autosave_interval)


def test_restart_keeps_retained_subscriptions_queue_and_inflight(start_broker, clients, tmp_path):
    broker = start_broker(**persistent_settings(tmp_path, autosave_interval=3600))
    port = broker.ports[0]
    node = RawClient(port).connect("node-1", clean_session=False)
    node.send(encoder.subscribe(1, [("lux/node-1/set", 1)]))
    node.next_packet()
    operator = clients(port).connect()
    operator.publish("lux/node-1/state", b"50", qos=1, retain=True)
    operator.publish("lux/node-1/set", b"inflight", qos=1)
    assert node.next_packet().payload == b"inflight"  # never acked
    node.close()
    broker.log.wait("Client node-1 closed its connection.")
    operator.publish("lux/node-1/set", b"queued", qos=1)
    broker.stop()  # a clean stop saves, whatever autosave_interval says

    restarted = start_broker(**persistent_settings(tmp_path))
    restarted.log.wait("Restored 1 retained messages and 1 sessions")
    port = restarted.ports[0]
    again = RawClient(port)
    again.send(encoder.connect(Connect(client_id="node-1", clean_session=False)))
    assert again.next_packet().session_present
    redelivered = again.next_packet()
    assert (redelivered.payload, redelivered.dup) == (b"inflight", True)
    again.send(encoder.puback(redelivered.packet_id))
    queued = again.next_packet()
    assert (queued.payload, queued.dup) == (b"queued", False)
    again.send(encoder.puback(queued.packet_id) + encoder.subscribe(2, [("lux/+/state", 0)]))
    assert again.next_packet().return_codes == [0]
    retained = again.next_packet()
    assert (retained.topic, retained.payload, retained.retain) == ("lux/node-1/state", b"50", True)
    again.close()


def test_kill_9_with_autosave_0_loses_nothing(tmp_path):
    port = free_port()
    conf = tmp_path / "broker.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {tmp_path}\nautosave_interval 0\npid_file {tmp_path}/broker.pid\n")

    def start():
        proc = subprocess.Popen([sys.executable, "-m", "luxnode", "broker", "-c", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: proc.poll() is not None or port_open(port), 10, what="broker to listen")
        assert proc.poll() is None, proc.stderr.read().decode()
        return proc

    proc = start()
    try:
        assert (tmp_path / "broker.pid").read_text().strip() == str(proc.pid)
        node = RawClient(port).connect("node-9", clean_session=False)
        node.send(encoder.subscribe(1, [("lux/node-9/set", 2)]))
        node.next_packet()
        node.close()
        operator = RawClient(port).connect("operator")
        operator.send(encoder.publish(b"lux/node-9/light", b"42", qos=1, retain=True, packet_id=1)
                      + encoder.publish(b"lux/node-9/set", b"ON", qos=2, packet_id=2))
        assert operator.next_packet().type == 4 and operator.next_packet().type == 5
        operator.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc = start()
        again = RawClient(port)
        again.send(encoder.connect(Connect(client_id="node-9", clean_session=False)))
        assert again.next_packet().session_present
        message = again.next_packet()
        assert (message.topic, message.payload, message.qos) == ("lux/node-9/set", b"ON", 2)
        again.send(encoder.subscribe(3, [("lux/#", 0)]))
        again.next_packet()
        assert again.next_packet().payload == b"42"
        again.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert not (tmp_path / "broker.pid").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_corrupt_store_is_a_one_line_error(tmp_path):
    (tmp_path / "luxnode.db").write_bytes(b"this is not a database" * 100)
    conf = tmp_path / "broker.conf"
    conf.write_text(f"listener {free_port()} 127.0.0.1\npersistence true\npersistence_location {tmp_path}\n")
    result = subprocess.run([sys.executable, "-m", "luxnode", "broker", "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"cannot use persistence file {tmp_path / 'luxnode.db'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_store_file_is_private(start_broker, tmp_path):
    start_broker(**persistent_settings(tmp_path)).stop()
    assert (tmp_path / "luxnode.db").stat().st_mode & 0o777 == 0o600


def test_session_owners_are_saved_and_older_files_migrate(tmp_path):
    path = tmp_path / "luxnode.db"
    old = sqlite3.connect(path)  # the schema before owners were kept
    old.executescript("CREATE TABLE sessions (client_id TEXT PRIMARY KEY, next_packet_id INTEGER NOT NULL);"
                      "INSERT INTO sessions VALUES ('old-node', 7);")
    old.close()
    store = Store(path)
    _, (restored,) = store.load()
    assert (restored.client_id, restored.next_packet_id, restored.owner) == ("old-node", 7, UNCLAIMED)
    assert restored.owned_by("anyone")  # saved with no owner: the first username claims it
    named, anonymous = Session("node-1", persistent=True), Session("anon", persistent=True)
    named.owner, anonymous.owner = "node-1", None
    store.save({}, {"node-1": named, "anon": anonymous, "old-node": restored})
    store.close()
    store = Store(path)
    owners = {session.client_id: session.owner for session in store.load()[1]}
    store.close()
    assert owners == {"node-1": "node-1", "anon": None, "old-node": UNCLAIMED}
