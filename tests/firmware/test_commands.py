"""Command validation (lux.commands) on the MicroPython unix port."""

import json

import pytest

from tests.support.micropython import run


def parse_all(payloads):
    code = """
import json
from lux import commands
out = []
for p in %r:
    p = bytes.fromhex(p)
    try:
        out.append(list(commands.parse(p, len(p), 500)))
    except commands.CommandError as e:
        out.append(["error", str(e), commands.excerpt(p)])
print(json.dumps(out))
""" % [p.hex() for p in payloads]
    return json.loads(run(code).strip())


GOOD = {
    b'{"control":"PWM","value":50,"unit":"%"}': ["PWM", 50, 500],
    b'{"control":"PWM","value":12.5,"unit":"%","fade_ms":0}': ["PWM", 12.5, 0],
    b'{"control":"PWM","value":100}': ["PWM", 100, 500],
    b'{"control":"AUTO","value":60,"unit":"%"}': ["AUTO", 60, 0],
    b'{"control":"ON"}': ["ON", None, 500],
    b'{"control":"OFF","fade_ms":2000}': ["OFF", None, 2000],
    b'{"state":"ON","brightness":255,"transition":2}': ["PWM", 100.0, 2000],
    b'{"state":"ON","brightness":0}': ["PWM", 0.0, 500],
    b'{"state":"ON"}': ["ON", None, 500],
    b'{"state":"OFF","transition":0.5}': ["OFF", None, 500],
    # Home Assistant offers transitions up to 6553 s: accepted, not refused
    b'{"state":"ON","brightness":128,"transition":6553}': ["PWM", 128 * 100 / 255, 6553000],
}


def test_every_form_of_the_contract():
    # The chips' floats are single precision (about 7 digits), CPython's double.
    expected = [[control, None if value is None else pytest.approx(value, rel=1e-6), fade_ms]
                for control, value, fade_ms in GOOD.values()]
    assert parse_all(list(GOOD)) == expected


BAD = {
    b"not json": "not valid JSON",
    b'{"control":"PWM","value":50': "not valid JSON",
    b"\xff\xfe": "not valid JSON",
    b"50": "command must be a JSON object",
    b'["PWM"]': "command must be a JSON object",
    b'{"value":50}': 'missing "control" (or Home Assistant "state")',
    b'{"control":"DIM","value":5}': 'unknown control "DIM"',
    b'{"control":7}': "unknown control 7",
    b'{"control":"PWM"}': "value is missing",
    b'{"control":"PWM","value":101}': "value must be within 0..100",
    b'{"control":"PWM","value":-1}': "value must be within 0..100",
    b'{"control":"PWM","value":"50"}': "value must be a number",
    b'{"control":"PWM","value":true}': "value must be a number",
    b'{"control":"PWM","value":50,"unit":"lx"}': 'unit must be "%"',
    b'{"control":"AUTO","value":60,"unit":"V"}': 'unit must be "%"',
    b'{"control":"PWM","value":5,"fade_ms":-3}': "fade_ms must be within 0..6553000",
    b'{"state":"ON","transition":6554}': "transition must be within 0..6553",
    # Home Assistant offers flash on every JSON light: refused, so the output stays as it is
    b'{"state":"ON","flash":2}': "flash is not supported",
    b'{"state":"ON","flash":"short"}': "flash is not supported",
    b'{"state":"DIM"}': 'state must be "ON" or "OFF"',
    b'{"state":"ON","brightness":256}': "brightness must be within 0..255",
    b'{"state":"ON","transition":"slow"}': "transition must be a number",
}


def test_bad_commands_name_the_problem():
    got = parse_all(list(BAD))
    for (p, reason), (kind, msg, excerpt) in zip(BAD.items(), got):
        assert kind == "error" and msg == reason, p
    assert got[2][2] == "\\xff\\xfe"  # undecodable bytes shown escaped


def test_oversize_and_excerpt():
    code = """
from lux import commands
p = b'{"control":"PWM","value":1,"pad":"' + b"x" * 300 + b'"}'
try:
    commands.parse(p[:100], len(p), 0)
except commands.CommandError as e:
    print(e)
print(len(commands.excerpt(p)))
"""
    reason, excerpt_len = run(code).split("\n")[:2]
    assert reason == "payload too large (336 bytes, max 256)"
    assert excerpt_len == "64"
