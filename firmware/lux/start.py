# Wiring: config.json + board.json -> a running Node. Used once at boot and
# unloaded (with lux.config) before the loop starts, to keep its code off the heap.
import gc
import json
from time import ticks_add, ticks_ms

from micropython import const

from . import config
from .dimmer import Dimmer
from .mqtt import MQTTClient
from . import forget
from .node import VERSION, Node, log
from .sensor import LightSensor

_LOW_HEAP = const(16384)  # free after start-up; an ESP8266 with lux frozen has 28 KB


def load_state(path):
    """The LED state Node.save() wrote, or None."""
    try:
        with open(path) as f:
            doc = json.load(f)
        return doc["control"], doc["value"], doc["last_on"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build(cfg, adc, pwm, tls_ctx):
    n = Node()
    n.started = now = ticks_ms()
    n.device_id = cfg.device_id
    n.board = cfg.board_name
    n.prefix = cfg.prefix
    n.fade_ms = cfg.fade_ms
    n.sample_ms = cfg.sample_ms
    n.telemetry_ms = int(cfg.telemetry_s * 1000)
    n.wdt_ms = int(cfg.wdt_s * 1000)
    n.saved = load_state("state.json")
    n.save_ms = int(cfg.save_delay_s * 1000)
    n._changed_at = None
    n.control, n.value, n.last_on = n.saved or ("PWM", 0, 100)
    if n.control not in ("PWM", "AUTO"):
        n.control, n.value = "PWM", 0
    n.dimmer = Dimmer(pwm, cfg.invert and not cfg.hw_invert, cfg.gamma, cfg.min_duty, cfg.max_duty)
    n.dimmer.set_level(n.value if n.control == "PWM" else 0, 0, now)  # the restored level, at once
    read, shift = config.adc_reader(cfg, adc)
    n.sensor = LightSensor(read, shift, cfg.dark_raw, cfg.bright_raw, cfg.oversample,
                           cfg.smoothing, cfg.deadband, int(cfg.interval_s * 1000))
    n.kp, n.ki, n.pi = cfg.kp, cfg.ki, None
    n.wlan = n.wifi = None
    if cfg.ssid:  # without a WiFi section the port's network is taken as it is
        from . import wifi

        n.ssid, n.wifi_password = cfg.ssid, cfg.wifi_password
        n.wlan = wifi.station(cfg.device_id, log)
        n.wifi = wifi.WiFi(n.wlan, n.ssid, n.wifi_password, log)
    n.t_set = cfg.topic("set").encode()
    n.t_light = cfg.topic("light").encode()  # bytes: publish() need not encode them each time
    n.t_state = cfg.topic("state").encode()
    n.t_error = cfg.topic("error").encode()
    n.clock = None
    if cfg.tls_mode == "cert":
        from .clock import Clock

        n.clock = Clock(cfg.ntp_server, log)
    n.mqtt = MQTTClient(
        cfg.client_id, cfg.host, cfg.port, cfg.username, cfg.password, cfg.keepalive,
        cfg.clean_session, tls_ctx, cfg.host if cfg.tls_mode == "cert" else None,
        (cfg.topic("status"), "offline", True, 1), cfg.rx_buffer, cfg.tx_buffer,
        int(cfg.reconnect_max_s * 1000), subs=((n.t_set, 1),), on_message=n.on_message,
        on_connect=n.on_connect, log=log)
    n._next_sample = n._last_sample = now
    n._next_telemetry = ticks_add(now, n.telemetry_ms)
    n.uptime_ms = 0
    n._state_value = None
    n._stable = not cfg.rtc_memory  # True: no boot count to clear
    n._commands_at = None
    n._announced = False
    if n.control == "AUTO":
        n.apply("AUTO", n.value, 0)
    log("node %s started (board %s, firmware %s)" % (n.device_id, n.board, VERSION))
    return n


def start():
    """The node from config.json and board.json, ready to run(); stops loudly on a
    config error. Unloads the start-up modules, this one included."""
    forget("safemode")
    try:
        cfg = config.load()
        n = build(cfg, config.adc(cfg), config.pwm(cfg), config.tls_context(cfg))
    except config.ConfigError as e:
        log("config error: %s" % e)
        raise
    finally:
        forget("config")
    # A node needs room for commands, discovery and reconnects: say so when there is little
    # (an ESP8266 running lux/*.mpy from its filesystem).
    gc.collect()
    if gc.mem_free() < _LOW_HEAP:
        log("only %d bytes of heap free, little margin; on an ESP8266 put lux in ROMFS"
            " (luxnode deploy --romfs) or flash it frozen (tools/freeze-manifest.py)" % gc.mem_free())
    forget("start")  # nothing below may use this module's globals
    return n
