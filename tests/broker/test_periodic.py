"""The broker's periodic tasks (housekeeping, $SYS, autosave, save retry, session expiry) are
supervised: an exception is logged with its traceback and the task runs again."""

import threading

from luxnode.broker import server
from luxnode.broker.core import Broker
from luxnode.broker.server import Server
from tests.support.net import wait_for

INTERVAL_S = 0.05


def failing_once(monkeypatch, owner, name: str) -> list:
    """Replace ``owner.name`` by a version that raises on its first call; the calls are counted."""
    original = getattr(owner, name)
    calls = []
    lock = threading.Lock()

    def flaky(self, *args, **kwargs):
        with lock:
            calls.append(1)
            first = len(calls) == 1
        if first:
            raise RuntimeError(f"injected failure in {name}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)
    return calls


def test_every_periodic_task_logs_a_failure_and_runs_again(start_broker, monkeypatch, tmp_path):
    monkeypatch.setattr(server, "TICK_S", INTERVAL_S)
    monkeypatch.setattr(server, "SAVE_RETRY_S", INTERVAL_S)
    monkeypatch.setattr(server, "EXPIRY_SCAN_S", INTERVAL_S)
    tasks = {
        "Housekeeping": failing_once(monkeypatch, Broker, "tick"),
        "Publishing $SYS": failing_once(monkeypatch, Broker, "publish_sys"),
        "Autosave": failing_once(monkeypatch, Server, "save"),
        "Retrying the save": failing_once(monkeypatch, Server, "_retry_save"),
        "Expiring persistent sessions": failing_once(monkeypatch, Server, "expire_sessions"),
    }
    broker = start_broker(sys_interval=1, autosave_interval=1, persistence=True, persistence_location=tmp_path,
                          persistent_client_expiration=3600)
    for what, calls in tasks.items():
        broker.log.wait(f"{what} failed, continuing:\nTraceback (most recent call last):", timeout=10)
        assert "RuntimeError: injected failure in " in broker.log.text
        wait_for(lambda: len(calls) >= 2, 10, what=f"{what} to run again after its failure")
