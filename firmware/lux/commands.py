# Commands on {prefix}/{id}/set -> (control, value, fade_ms) or CommandError
# with a reason that is published on the error topic.
import json

from micropython import const

_MAX_COMMAND = const(256)
_MAX_TRANSITION_S = const(6553)  # the longest transition Home Assistant offers


class CommandError(Exception):
    pass


def _number(cmd, key, lo, hi):
    v = cmd[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise CommandError("%s must be a number" % key)
    if not lo <= v <= hi:
        raise CommandError("%s must be within %s..%s" % (key, lo, hi))
    return v


def _fade(cmd, default):
    if "fade_ms" in cmd:
        return int(_number(cmd, "fade_ms", 0, _MAX_TRANSITION_S * 1000))
    if "transition" in cmd:
        return int(_number(cmd, "transition", 0, _MAX_TRANSITION_S) * 1000)
    return default


def parse(payload, size, fade_ms):
    """payload: the bytes received, size: their full length (more if truncated)."""
    if size > _MAX_COMMAND:
        raise CommandError("payload too large (%d bytes, max %d)" % (size, _MAX_COMMAND))
    try:
        cmd = json.loads(bytes(payload))
    except (ValueError, UnicodeError):
        raise CommandError("not valid JSON")
    if not isinstance(cmd, dict):
        raise CommandError("command must be a JSON object")
    if "control" in cmd:
        control = cmd["control"]
        if control in ("PWM", "AUTO"):
            if "value" not in cmd:
                raise CommandError("value is missing")
            value = _number(cmd, "value", 0, 100)
            if cmd.get("unit", "%") != "%":
                raise CommandError("unit must be \"%\"")
            return control, value, _fade(cmd, fade_ms) if control == "PWM" else 0
        if control in ("ON", "OFF"):
            return control, None, _fade(cmd, fade_ms)
        raise CommandError("unknown control %s" % json.dumps(control))
    if "state" in cmd:  # Home Assistant JSON light schema
        state = cmd["state"]
        if state not in ("ON", "OFF"):
            raise CommandError("state must be \"ON\" or \"OFF\"")
        if "flash" in cmd:  # the output stays as it is: a flash would end in a state nobody asked for
            raise CommandError("flash is not supported")
        fade = _fade(cmd, fade_ms)
        if state == "ON" and "brightness" in cmd:
            return "PWM", _number(cmd, "brightness", 0, 255) * 100 / 255, fade
        return state, None, fade
    raise CommandError("missing \"control\" (or Home Assistant \"state\")")


def excerpt(payload):
    """The first 64 bytes received, as text for the error message."""
    head = bytes(payload[:64])
    try:
        return head.decode()
    except UnicodeError:
        return "".join(chr(b) if 32 <= b < 127 else "\\x%02x" % b for b in head)


def handle(node, payload, size):
    """Apply a command, or answer it with one error message (the output stays as it is)."""
    try:
        cmd = parse(payload, size, node.fade_ms)
    except CommandError as e:
        node.mqtt.publish(node.t_error, json.dumps({"error": str(e), "payload": excerpt(payload)}))
        print("luxnode: command refused:", e)
        return
    node.apply(*cmd)
