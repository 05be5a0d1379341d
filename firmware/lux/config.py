# config.json + board.json -> one validated Config. Every problem is a
# ConfigError naming the key; nothing falls back to a weaker setting.
import json

from micropython import const

TYPE_CHECKING = const(0)
if TYPE_CHECKING:  # pyright only
    from typing import Any

_REQUIRED = object()


class ConfigError(Exception):
    pass


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        raise ConfigError(path + ": not found")
    except ValueError:
        raise ConfigError(path + ": not valid JSON")


def _key(group, key):
    """The key's full name for messages (kept apart: each distinct string stays in RAM)."""
    return key if not group else ("mqtt.tls." if group == "tls" else group + ".") + key


def _get(doc, group, key, default=_REQUIRED, kind: "type" = str, lo=0.0, hi=0.0) -> "Any":
    """config.json's group.key (group "tls": mqtt.tls; None: the top level), default when it is
    absent, checked as kind: str (or None), bool, int, or float (any number); numbers lo..hi.
    (One function, not one per kind: each function's name stays interned after lux.config goes.)"""
    node = doc
    if group:
        for part in ("mqtt", "tls") if group == "tls" else (group,):
            node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and node.get(key) is not None:
        v = node[key]
    elif default is _REQUIRED:
        raise ConfigError("config.json: %s is missing" % _key(group, key))
    else:
        v = default
    if kind is str:
        if v is not None and not isinstance(v, str):
            raise ConfigError("config.json: %s must be a string" % _key(group, key))
    elif kind is bool:
        if not isinstance(v, bool):
            raise ConfigError("config.json: %s must be true or false" % _key(group, key))
    elif isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
        # Whole messages: a short string would be interned, and stay after lux.config is unloaded.
        raise ConfigError(("config.json: %s must be an integer" if kind is int else "config.json: %s must be a number")
                          % _key(group, key))
    elif not lo <= v <= hi:
        raise ConfigError("config.json: %s must be within %s..%s, not %s" % (_key(group, key), lo, hi, v))
    return v


def _name(doc, group, key, default=_REQUIRED):
    v = _get(doc, group, key, default)
    if not v or any(c in v for c in "/+# "):
        raise ConfigError("config.json: %s %r is not usable in an MQTT topic" % (_key(group, key), v))
    return v


class Config:
    def __init__(self, doc, board):
        if not isinstance(doc, dict):
            raise ConfigError("config.json: must be a JSON object")
        self.board_name = board.get("name")
        self.chip = board.get("chip")
        caps = board.get("capabilities") or {}
        self.device_id = _name(doc, None, "device_id")
        name = _get(doc, None, "board", board.get("name"))
        if name != board.get("name"):
            raise ConfigError("config.json: board %r but board.json is %r" % (name, board.get("name")))
        self.ssid = _get(doc, "wifi", "ssid", None)
        self.wifi_password = _get(doc, "wifi", "password", "")

        self.tls_mode = _get(doc, "tls", "mode", None)
        if self.tls_mode not in (None, "psk", "cert"):
            raise ConfigError("config.json: mqtt.tls.mode must be \"psk\" or \"cert\"")
        if self.tls_mode == "psk":
            if not caps.get("tls_psk"):
                raise ConfigError("config.json: mqtt.tls.mode \"psk\" but board %s has no TLS-PSK;"
                                  " refusing to connect without it" % name)
            self.psk_identity = _get(doc, "tls", "identity", None) or _get(doc, "mqtt", "username", None) \
                or self.device_id
            key = _get(doc, "tls", "key")
            try:
                self.psk_key = bytes.fromhex(key or "")
            except ValueError:
                raise ConfigError("config.json: mqtt.tls.key must be hex")
            if not self.psk_key:
                raise ConfigError("config.json: mqtt.tls.key is empty")
        elif self.tls_mode == "cert":
            self.ca = _get(doc, "tls", "ca")
        # The clock is set before a certificate is checked (ESP32s start at 2000-01-01).
        self.ntp_server = _get(doc, None, "ntp_server", "pool.ntp.org") or ""
        # split, not partition: the ESP8266's str has no partition (MICROPY_PY_BUILTINS_STR_PARTITION 0)
        if not self.ntp_server or ":" in self.ntp_server and not self.ntp_server.split(":", 1)[1].isdigit():
            raise ConfigError("config.json: ntp_server must be host or host:port")
        self.host = _get(doc, "mqtt", "host")
        self.port = _get(doc, "mqtt", "port", 8883 if self.tls_mode else 1883, int, 1, 65535)
        self.client_id = _get(doc, "mqtt", "client_id", "luxnode-" + self.device_id)
        self.username = _get(doc, "mqtt", "username", None)
        self.password = _get(doc, "mqtt", "password", None)
        self.keepalive = _get(doc, "mqtt", "keepalive", 60, int, 0, 65535)
        self.prefix = _name(doc, "mqtt", "prefix", "luxnode")
        self.clean_session = _get(doc, "mqtt", "clean_session", False, bool)
        self.reconnect_max_s = _get(doc, "mqtt", "reconnect_max_s", 30, float, 1, 3600)
        # The largest command (256 bytes) with its topic and headers must fit.
        need = 270 + len(self.prefix) + len(self.device_id)
        self.rx_buffer = _get(doc, "mqtt", "rx_buffer", max(384, need), int, need, 16384)
        self.tx_buffer = _get(doc, "mqtt", "tx_buffer", 256, int, 64, 16384)

        bits = board["adc"]["bits"]
        full = (1 << bits) - 1
        self.adc_pin = _get(doc, "pins", "adc", board["adc"]["pin"], int, 0, 255)
        self.adc_bits = bits
        self.adc_atten_db = board["adc"].get("atten_db")
        self.interval_s = _get(doc, "sensor", "interval_s", 5, float, 0.1, 86400)
        self.deadband = _get(doc, "sensor", "deadband", 1.0, float, 0, 100)
        self.dark_raw = _get(doc, "sensor", "dark_raw", 0, int, 0, full)
        self.bright_raw = _get(doc, "sensor", "bright_raw", full, int, 0, full)
        if self.dark_raw == self.bright_raw:
            raise ConfigError("config.json: sensor.dark_raw and sensor.bright_raw must differ")
        self.oversample = _get(doc, "sensor", "oversample", 16, int, 1, 256)
        self.sample_ms = _get(doc, "sensor", "sample_ms", 200, int, 10, 60000)
        self.smoothing = _get(doc, "sensor", "smoothing", 0.5, float, 0.01, 1)

        pwm = board["pwm"]
        self.pwm_pin = _get(doc, "pins", "pwm", pwm["pin"], int, 0, 255)
        self.freq = _get(doc, "dimmer", "freq", min(1000, pwm["freq_max"]), int, pwm["freq_min"], pwm["freq_max"])
        self.invert = _get(doc, "dimmer", "invert", False, bool)
        self.hw_invert = bool(caps.get("pwm_invert"))
        self.gamma = _get(doc, "dimmer", "gamma", 2.2, float, 0.1, 5)
        self.fade_ms = _get(doc, "dimmer", "fade_ms", 500, int, 0, 600000)
        self.min_duty = _get(doc, "dimmer", "min_duty", 0.0, float, 0, 1)
        self.max_duty = _get(doc, "dimmer", "max_duty", 1.0, float, 0, 1)
        if self.min_duty >= self.max_duty:
            raise ConfigError("config.json: dimmer.min_duty must be below dimmer.max_duty")
        self.save_delay_s = _get(doc, "dimmer", "save_delay_s", 5, float, 0, 3600)

        self.kp = _get(doc, "control", "kp", 0.5, float, 0, 100)
        self.ki = _get(doc, "control", "ki", 1.0, float, 0, 100)
        self.telemetry_s = _get(doc, None, "telemetry_s", 60, float, 1, 86400)
        self.wdt_s = _get(doc, None, "wdt_s", 30, float, 0, 3600)
        if 0 < self.wdt_s < 10:
            raise ConfigError("config.json: wdt_s must be 0 (no watchdog) or at least 10"
                              " (a TLS handshake may take 5 s)")
        self.rtc_memory = bool(caps.get("rtc_memory"))

    def topic(self, name):
        return "%s/%s/%s" % (self.prefix, self.device_id, name)


def tls_context(cfg):
    """The client context for cfg's TLS mode, or None for plain MQTT."""
    if not cfg.tls_mode:
        return None
    import tls

    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    if cfg.tls_mode == "psk":
        try:
            # The stubs' SSLContext lacks verify_mode and psk_* (extmod/modtls_mbedtls.c has them).
            ctx.verify_mode = tls.CERT_NONE  # pyright: ignore[reportAttributeAccessIssue]
            ctx.psk_identity = cfg.psk_identity  # pyright: ignore[reportAttributeAccessIssue]
            ctx.psk_key = cfg.psk_key  # pyright: ignore[reportAttributeAccessIssue]
        except AttributeError:
            raise ConfigError("mqtt.tls.mode \"psk\" but this MicroPython has no TLS-PSK"
                              " (tls.SSLContext.psk_key); flash MicroPython >= 1.29")
    else:
        # axTLS (ESP8266) has neither CERT_REQUIRED nor load_verify_locations: it
        # cannot check the broker, and an unchecked TLS is not "cert" mode.
        load = getattr(ctx, "load_verify_locations", None)
        if load is None or not hasattr(tls, "CERT_REQUIRED"):
            raise ConfigError("mqtt.tls.mode \"cert\" but this MicroPython's TLS cannot verify"
                              " a certificate (axTLS); refusing to connect unverified")
        ctx.verify_mode = tls.CERT_REQUIRED  # pyright: ignore[reportAttributeAccessIssue]
        try:
            with open(cfg.ca, "rb") as f:
                data = f.read()
        except OSError:
            raise ConfigError("config.json: mqtt.tls.ca file %s not found" % cfg.ca)
        if data.startswith(b"-----BEGIN"):  # tls takes DER: decode the first PEM block
            from binascii import a2b_base64

            data = a2b_base64(b"".join(data.split(b"-----")[2].split()))
        try:
            load(data)
        except ValueError:
            raise ConfigError("config.json: mqtt.tls.ca %s is not a certificate" % cfg.ca)
    return ctx


def adc_reader(cfg, adc):
    """(read, shift): read() >> shift is the raw value in the board's ADC width. The
    ESP8266's read_u16 is v * 65535 / 1024, which >> 6 turns into raw - 1: read() is raw."""
    if cfg.chip == "ESP8266":
        return adc.read, 0
    return adc.read_u16, 16 - cfg.adc_bits


def adc(cfg):
    from machine import ADC, Pin

    try:
        a = ADC(Pin(cfg.adc_pin))
    except (TypeError, ValueError):  # ports whose ADC takes a channel number (ESP8266)
        a = ADC(cfg.adc_pin)
    if cfg.adc_atten_db is not None and hasattr(a, "atten"):
        a.atten(getattr(ADC, "ATTN_%sDB" % str(cfg.adc_atten_db).replace(".", "_")))
    return a


def pwm(cfg):
    """The LED's PWM, created dark: the node sets the restored level right after."""
    from machine import PWM, Pin

    if cfg.invert and cfg.hw_invert:
        return PWM(Pin(cfg.pwm_pin), freq=cfg.freq, duty_u16=0, invert=True)
    return PWM(Pin(cfg.pwm_pin), freq=cfg.freq, duty_u16=65535 if cfg.invert else 0)


def load():
    return Config(load_json("config.json"), load_json("board.json"))
