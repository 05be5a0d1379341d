"""Hypothesis settings and health checks shared by the broker fuzz tests.

By default every run tries the same examples (derandomized), so the suite is deterministic
and a failure reproduces. For a longer, fresh hunt set LUXNODE_FUZZ=explore: random
examples, ten times as many."""

import os
import socket

from hypothesis import HealthCheck, settings

EXPLORE = os.environ.get("LUXNODE_FUZZ") == "explore"
CRASH_MARKERS = ("Traceback", "Exception in callback", "Task exception was never retrieved")


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples * (10 if EXPLORE else 1),
        derandomize=not EXPLORE,
        deadline=None,
        # One broker per test function serves all its examples; each example is a network round trip.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def assert_survived(broker) -> None:
    """The broker process runs and logged no unhandled exception."""
    assert broker.alive(), f"broker died:\n{broker.log_text()[-3000:]}"
    log = broker.log_text()
    for marker in CRASH_MARKERS:
        assert marker not in log, f"unhandled exception in the broker:\n{log[log.index(marker) - 200:][:3000]}"


def assert_healthy(broker, bystanders) -> None:
    """Survived, and the well-behaved clients around the fuzzing are still served."""
    assert_survived(broker)
    bystanders.probe()


def send_and_hang_up(port: int, data: bytes) -> None:
    """Send ``data``, half-close, and read until the broker closes its side (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            return  # the broker hung up first: fine
        except socket.timeout:
            raise AssertionError(f"broker kept the connection open 5 s after the client's FIN; sent {data[:64]!r}")
