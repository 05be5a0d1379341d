"""Tests the current firmware fails when the suites run on a board-faithful chip
(LUXNODE_FAITHFUL=esp32|esp8266), each with the firmware defect that fails it (issue 8).
Marked xfail(strict=True): a fixed firmware makes them pass, and then the entry must go."""

import pytest

from tests.support.micropython import FAITHFUL

# chip -> {test node id (relative to the repository) -> the firmware defect}
KNOWN = {
    "esp32": {},
    "esp8266": {},
}
# chip -> {test node id -> why it cannot pass there}: not run (they would wait forever).
NOT_ON_CHIP = {
    "esp32": {},
    "esp8266": {
        "tests/firmware/test_mqtt_mosquitto.py::test_tls_certificate_mode_verifies_the_broker":
            "certificate mode does not exist there (axTLS verifies no certificate; the firmware refuses "
            "it)",
        "tests/firmware/test_node.py::test_node_over_tls_psk_with_credentials":
            "the ESP8266 has no TLS-PSK (axTLS); the firmware refuses the config, as it must",
        "tests/sim/test_e2e.py::test_tls_psk_connects_and_a_wrong_key_is_refused":
            "the ESP8266 has no TLS-PSK (axTLS); the firmware refuses the config, as it must",
        "tests/firmware/test_node.py::test_bad_config_names_the_key[change0-config.json: dimmer.freq must be "
        "within 1..40000, not 90000]":
            "expects the ESP32 range in the message; the ESP8266 board's PWM range is 1..1000",
    },
}


def mark_known_failures(items):
    known = KNOWN.get(FAITHFUL or "", {})
    never = NOT_ON_CHIP.get(FAITHFUL or "", {})
    for item in items:
        reason = known.get(item.nodeid)
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"firmware defect on {FAITHFUL}: {reason}"))
        elif item.nodeid in never:
            item.add_marker(pytest.mark.xfail(run=False, reason=f"not on {FAITHFUL}: {never[item.nodeid]}"))
