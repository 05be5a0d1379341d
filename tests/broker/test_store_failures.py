"""Persistence under failure: a full disk, space coming back, a damaged database file."""

import os
import random
import sqlite3
import subprocess

import pytest

from luxnode.broker.store import Store
from luxnode.errors import LuxnodeError
from luxnode.mqtt import encoder
from luxnode.mqtt.packets import Connect

from .conftest import RawClient


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs of our own, so filling it harms nothing else."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk) -> None:
    """Write until the file system says it is full."""
    descriptor = os.open(disk / "filler", os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        while True:
            os.write(descriptor, bytes(4096))
    except OSError:
        pass
    finally:
        os.close(descriptor)


def persistent(location) -> dict:
    return dict(persistence=True, persistence_location=location, autosave_interval=0)


def test_full_disk_logs_the_os_reason_once_and_saves_everything_when_space_returns(start_broker, clients,
                                                                                    small_disk):
    broker = start_broker(**persistent(small_disk))
    port = broker.ports[0]
    sleeper = RawClient(port).connect("sleeper", clean_session=False)
    sleeper.send(encoder.subscribe(1, [("t", 1)]))
    sleeper.next_packet()
    sleeper.close()
    broker.log.wait("Client sleeper closed its connection.")
    fill(small_disk)
    publisher = clients(port, client_id="pub").connect()
    for n in range(40):
        publisher.publish("t", b"%04d" % n + bytes(2000), qos=1)  # acknowledged while the disk is full
    publisher.publish("keep", b"retained", qos=1, retain=True)
    log = broker.log.wait("failed: No space left on device")
    assert log.count("Saving to") == 1, log  # once per episode, not per message
    assert "cannot rollback" not in log
    (small_disk / "filler").unlink()
    broker.log.wait("works again")  # retried with no new traffic
    broker.stop()

    restarted = start_broker(**persistent(small_disk))
    restarted.log.wait("Restored 1 retained messages and 1 sessions")
    again = RawClient(restarted.ports[0])
    again.send(encoder.connect(Connect(client_id="sleeper", clean_session=False)))
    assert again.next_packet().session_present
    received = []
    while len(received) < 40:
        message = again.next_packet()
        received.append(message.payload[:4])
        again.send(encoder.puback(message.packet_id))
    assert received == [b"%04d" % n for n in range(40)]
    again.close()


def test_still_full_at_stop_says_what_is_lost(start_broker, clients, small_disk):
    broker = start_broker(**persistent(small_disk))
    fill(small_disk)
    clients(broker.ports[0]).connect().publish("keep", b"x" * 5000, qos=1, retain=True)
    broker.log.wait("No space left on device")
    broker.stop()
    assert "Stopping with 1 retained topics and sessions not saved" in broker.log.text


def damage_index(path) -> None:
    """Overwrite the root page of the retained messages' primary key index with noise."""
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_retained_1'").fetchone()
    db.close()
    with open(path, "r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(random.Random(9).randbytes(page_size))


def test_a_damaged_index_page_stops_startup_with_the_way_out(start_broker, tmp_path):
    path = tmp_path / "luxnode.db"
    store = Store(path)
    store.save({f"lux/n{n}/status": (b"online", 1) for n in range(300)}, {})
    store.close()
    damage_index(path)
    with pytest.raises(LuxnodeError) as refused:
        start_broker(**persistent(tmp_path))
    message = str(refused.value)
    assert message.startswith(f"cannot use persistence file {path}: it is damaged (")
    assert f"mv {path} {path}.damaged" in message and ".recover" in message
    path.rename(tmp_path / "luxnode.db.damaged")  # what the message says to do
    start_broker(**persistent(tmp_path)).log.wait("Restored 0 retained messages and 0 sessions")


def test_a_file_that_is_not_a_database_is_refused(start_broker, tmp_path):
    (tmp_path / "luxnode.db").write_bytes(b"not sqlite" * 500)
    with pytest.raises(LuxnodeError, match="is damaged .*file is not a database"):
        start_broker(**persistent(tmp_path))
