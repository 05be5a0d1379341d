# config.json + board.json -> one validated Config. Every problem is a
# ConfigError naming the key; nothing falls back to a weaker setting.
import json

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


def _key(section, key):
    """The key's full name for messages (kept apart: each distinct string stays in RAM)."""
    return key if not section else ("mqtt.tls." if section == "tls" else section + ".") + key


def _get(doc, section, key, default):
    node = doc
    if section:
        for part in ("mqtt", "tls") if section == "tls" else (section,):
            node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or node.get(key) is None:
        if default is _REQUIRED:
            raise ConfigError("config.json: %s is missing" % _key(section, key))
        return default
    return node[key]


def _str(doc, section, key, default=_REQUIRED):
    v = _get(doc, section, key, default)
    if v is not None and not isinstance(v, str):
        raise ConfigError("config.json: %s must be a string" % _key(section, key))
    return v


def _num(doc, section, key, default, lo, hi, integer=False):
    v = _get(doc, section, key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise ConfigError("config.json: %s must be %s" % (_key(section, key), "an integer" if integer else "a number"))
    if not lo <= v <= hi:
        raise ConfigError("config.json: %s must be within %s..%s, not %s" % (_key(section, key), lo, hi, v))
    return v


def _bool(doc, section, key, default):
    v = _get(doc, section, key, default)
    if not isinstance(v, bool):
        raise ConfigError("config.json: %s must be true or false" % _key(section, key))
    return v


def _name(doc, section, key, default=_REQUIRED):
    v = _str(doc, section, key, default)
    if not v or "/" in v or "+" in v or "#" in v or " " in v:
        raise ConfigError("config.json: %s %r is not usable in an MQTT topic" % (_key(section, key), v))
    return v


class Config:
    def __init__(self, doc, board):
        if not isinstance(doc, dict):
            raise ConfigError("config.json: must be a JSON object")
        self.board_name = board.get("name")
        self.chip = board.get("chip")
        caps = board.get("capabilities") or {}
        self.device_id = _name(doc, None, "device_id")
        name = _str(doc, None, "board", board.get("name"))
        if name != board.get("name"):
            raise ConfigError("config.json: board %r but board.json is %r" % (name, board.get("name")))
        self.ssid = _str(doc, "wifi", "ssid", None)
        self.wifi_password = _str(doc, "wifi", "password", "")

        self.tls_mode = _str(doc, "tls", "mode", None)
        if self.tls_mode not in (None, "psk", "cert"):
            raise ConfigError("config.json: mqtt.tls.mode must be \"psk\" or \"cert\"")
        if self.tls_mode == "psk":
            if not caps.get("tls_psk"):
                raise ConfigError("config.json: mqtt.tls.mode \"psk\" but board %s has no TLS-PSK;"
                                  " refusing to connect without it" % name)
            self.psk_identity = _str(doc, "tls", "identity", None) or _str(doc, "mqtt", "username", None) \
                or self.device_id
            key = _str(doc, "tls", "key")
            try:
                self.psk_key = bytes.fromhex(key or "")
            except ValueError:
                raise ConfigError("config.json: mqtt.tls.key must be hex")
            if not self.psk_key:
                raise ConfigError("config.json: mqtt.tls.key is empty")
        elif self.tls_mode == "cert":
            self.ca = _str(doc, "tls", "ca")
        # The clock is set before a certificate is checked (ESP32s start at 2000-01-01).
        self.ntp_server = _str(doc, None, "ntp_server", "pool.ntp.org") or ""
        if not self.ntp_server or ":" in self.ntp_server and not self.ntp_server.partition(":")[2].isdigit():
            raise ConfigError("config.json: ntp_server must be host or host:port")
        self.host = _str(doc, "mqtt", "host")
        self.port = _num(doc, "mqtt", "port", 8883 if self.tls_mode else 1883, 1, 65535, True)
        self.client_id = _str(doc, "mqtt", "client_id", "luxnode-" + self.device_id)
        self.username = _str(doc, "mqtt", "username", None)
        self.password = _str(doc, "mqtt", "password", None)
        self.keepalive = _num(doc, "mqtt", "keepalive", 60, 0, 65535, True)
        self.prefix = _name(doc, "mqtt", "prefix", "luxnode")
        self.clean_session = _bool(doc, "mqtt", "clean_session", False)
        self.reconnect_max_s = _num(doc, "mqtt", "reconnect_max_s", 30, 1, 3600)
        # The largest command (256 bytes) with its topic and headers must fit.
        need = 270 + len(self.prefix) + len(self.device_id)
        self.rx_buffer = _num(doc, "mqtt", "rx_buffer", max(384, need), need, 16384, True)
        self.tx_buffer = _num(doc, "mqtt", "tx_buffer", 256, 64, 16384, True)

        bits = board["adc"]["bits"]
        full = (1 << bits) - 1
        self.adc_pin = _num(doc, "pins", "adc", board["adc"]["pin"], 0, 255, True)
        self.adc_bits = bits
        self.adc_atten_db = board["adc"].get("atten_db")
        self.interval_s = _num(doc, "sensor", "interval_s", 5, 0.1, 86400)
        self.deadband = _num(doc, "sensor", "deadband", 1.0, 0, 100)
        self.dark_raw = _num(doc, "sensor", "dark_raw", 0, 0, full, True)
        self.bright_raw = _num(doc, "sensor", "bright_raw", full, 0, full, True)
        if self.dark_raw == self.bright_raw:
            raise ConfigError("config.json: sensor.dark_raw and sensor.bright_raw must differ")
        self.oversample = _num(doc, "sensor", "oversample", 16, 1, 256, True)
        self.sample_ms = _num(doc, "sensor", "sample_ms", 200, 10, 60000, True)
        self.smoothing = _num(doc, "sensor", "smoothing", 0.5, 0.01, 1)

        pwm = board["pwm"]
        self.pwm_pin = _num(doc, "pins", "pwm", pwm["pin"], 0, 255, True)
        self.freq = _num(doc, "dimmer", "freq", min(1000, pwm["freq_max"]), pwm["freq_min"], pwm["freq_max"], True)
        self.invert = _bool(doc, "dimmer", "invert", False)
        self.hw_invert = bool(caps.get("pwm_invert"))
        self.gamma = _num(doc, "dimmer", "gamma", 2.2, 0.1, 5)
        self.fade_ms = _num(doc, "dimmer", "fade_ms", 500, 0, 600000, True)
        self.min_duty = _num(doc, "dimmer", "min_duty", 0.0, 0, 1)
        self.max_duty = _num(doc, "dimmer", "max_duty", 1.0, 0, 1)
        if self.min_duty >= self.max_duty:
            raise ConfigError("config.json: dimmer.min_duty must be below dimmer.max_duty")
        self.save_delay_s = _num(doc, "dimmer", "save_delay_s", 5, 0, 3600)

        self.kp = _num(doc, "control", "kp", 0.5, 0, 100)
        self.ki = _num(doc, "control", "ki", 1.0, 0, 100)
        self.telemetry_s = _num(doc, None, "telemetry_s", 60, 1, 86400)
        self.wdt_s = _num(doc, None, "wdt_s", 30, 0, 3600)
        if 0 < self.wdt_s < 10:
            raise ConfigError("config.json: wdt_s must be 0 (no watchdog) or at least 10"
                              " (a TLS handshake may take 5 s)")
        self.rtc_memory = bool(caps.get("rtc_memory"))

    def topic(self, leaf):
        return "%s/%s/%s" % (self.prefix, self.device_id, leaf)


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


def load(config_path="config.json", board_path="board.json"):
    return Config(load_json(config_path), load_json(board_path))
