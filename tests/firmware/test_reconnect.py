"""Reconnect timer of lux.mqtt: exponential backoff with jitter from 1 s, capped."""

import re
import time

from tests.firmware.client import MPClient
from tests.support.net import free_port


def test_backoff_doubles_from_one_second_with_jitter_and_is_capped():
    client = MPClient(port=free_port(), backoff_max_ms=4000)  # nothing listens there
    try:
        waits = []
        while len(waits) < 5:
            line = client.expect("log mqtt error", timeout=10)
            assert "ECONNREFUSED" in line
            waits.append(int(re.search(r"retry in (\d+) ms", line).group(1)))
            if len(waits) == 3:
                # A 3-4 s wait has begun: the loop still answers at once (a timer, not a sleep).
                asked = time.monotonic()
                client.send("inflight")
                client.expect("inflight")
                # Well inside the 3 s the wait lasts at least, with room for a loaded machine.
                assert time.monotonic() - asked < 1.5
        for wait, step in zip(waits, (1000, 2000, 4000, 4000, 4000)):
            assert step * 3 // 4 <= wait <= step, waits  # jitter takes off up to a quarter
    finally:
        client.close()


def test_broker_address_is_resolved_once_and_again_only_after_a_failed_connect(mosquitto):
    broker = mosquitto("allow_anonymous true\n")
    client = MPClient(port=broker.port, host="127.0.0.1", backoff_max_ms=1000)
    try:
        client.expect("connected 1")
        broker.kill()
        client.expect("log mqtt error: connection lost")
        client.expect("log mqtt: connecting")  # the first attempt reuses the address
        client.expect("log mqtt error")  # refused ...
        client.expect("log mqtt: resolving 127.0.0.1")  # ... so the next one resolves again
        broker.start()
        client.expect("connected 2", timeout=15)
        lines = client.seen
        assert lines[0] == "log mqtt: resolving 127.0.0.1"
        lost = next(i for i, line in enumerate(lines) if "connection lost" in line)
        assert lines[lost + 1].startswith("log mqtt: connecting")
        assert sum("resolving" in line for line in lines[:lost]) == 1
    finally:
        client.close()
