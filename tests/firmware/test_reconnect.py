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
                assert time.monotonic() - asked < 0.5
        for wait, step in zip(waits, (1000, 2000, 4000, 4000, 4000)):
            assert step * 3 // 4 <= wait <= step, waits  # jitter takes off up to a quarter
    finally:
        client.close()
