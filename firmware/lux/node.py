# The light node: wires sensor, dimmer, controller, store, WiFi and MQTT into
# one non-blocking loop. Hardware comes from board.json; the only differences
# between boards are capability checks.
import gc
import json
from time import sleep_ms, ticks_add, ticks_diff, ticks_ms

import machine
from micropython import const

from . import commands, config, safemode
from .control import PI
from .dimmer import Dimmer, curve
from .mqtt import MQTTClient
from .sensor import LightSensor
from .store import Store

VERSION = "0.1.0"
_LOOP_MS = const(20)
_STABLE_MS = const(30000)


def log(msg):
    print("luxnode:", msg)


def _adc(cfg):
    from machine import ADC, Pin

    try:
        adc = ADC(Pin(cfg.adc_pin))
    except TypeError:  # ports whose ADC takes a channel number (ESP8266)
        adc = ADC(cfg.adc_pin)
    if cfg.adc_atten_db is not None and hasattr(adc, "atten"):
        adc.atten(getattr(ADC, "ATTN_%sDB" % str(cfg.adc_atten_db).replace(".", "_")))
    return adc


def _pwm(cfg, duty_u16):
    from machine import PWM, Pin

    if cfg.invert and cfg.hw_invert:
        return PWM(Pin(cfg.pwm_pin), freq=cfg.freq, duty_u16=duty_u16, invert=True)
    return PWM(Pin(cfg.pwm_pin), freq=cfg.freq, duty_u16=duty_u16)


class Node:
    def __init__(self, cfg):
        self.cfg = cfg
        self.started = ticks_ms()
        self.store = Store("state.json", int(cfg.save_delay_s * 1000))
        saved = self.store.load() or ("PWM", 0, 100)
        self.control, self.value, self.last_on = saved
        if self.control not in ("PWM", "AUTO"):
            self.control, self.value = "PWM", 0
        soft_invert = cfg.invert and not cfg.hw_invert
        self.dimmer = Dimmer(None, soft_invert, cfg.gamma, cfg.min_duty, cfg.max_duty)
        # Create the PWM already at the restored level: no flash at boot.
        start = self.value if self.control == "PWM" else 0
        self.dimmer.pwm = _pwm(cfg, 65535 if soft_invert else 0)
        self.dimmer.set_level(start, 0, self.started)
        adc = _adc(cfg)
        self.sensor = LightSensor(adc.read_u16, cfg.adc_bits, cfg.dark_raw, cfg.bright_raw,
                                  cfg.oversample, cfg.smoothing, cfg.deadband,
                                  int(cfg.interval_s * 1000))
        self.pi = PI(cfg.kp, cfg.ki, 0.0, cfg.max_duty)
        self.pi.reset(0.0)
        self.wifi = None
        if cfg.ssid:
            from .wifi import WiFi

            self.wifi = WiFi(cfg.ssid, cfg.wifi_password, cfg.device_id, log)
        self.t_set = cfg.topic("set").encode()
        self.t_light = cfg.topic("light")
        self.t_state = cfg.topic("state")
        self.t_status = cfg.topic("status")
        self.mqtt = MQTTClient(
            cfg.client_id, cfg.host, cfg.port, cfg.username, cfg.password, cfg.keepalive,
            cfg.clean_session, config.tls_context(cfg),
            cfg.host if cfg.tls_mode == "cert" else None,
            (self.t_status, "offline", True, 1), cfg.rx_buffer,
            backoff_max_ms=int(cfg.reconnect_max_s * 1000),
            on_message=self.on_message, on_connect=self.on_connect, log=log)
        self.mqtt.subscribe(self.t_set, 1)
        self._next_sample = self.started
        self._last_sample = self.started
        self._next_telemetry = ticks_add(self.started, int(cfg.telemetry_s * 1000))
        self._state_value = None
        self._stable = False
        log("node %s started (board %s, firmware %s)" % (cfg.device_id, cfg.board.get("name"), VERSION))

    # -- MQTT --

    def on_connect(self):
        m = self.mqtt
        m.publish(self.t_status, "online", True, 1)
        self.discovery()
        self.publish_state()
        self.sensor.resend()

    def on_message(self, topic, payload, size):
        if bytes(topic) != self.t_set:
            return
        try:
            cmd = commands.parse(payload, size, self.cfg.fade_ms)
        except commands.CommandError as e:
            self.mqtt.publish(self.cfg.topic("error"), json.dumps(
                {"error": str(e), "payload": commands.excerpt(payload)}))
            log("command refused: %s" % e)
            return
        self.apply(*cmd)

    def apply(self, control, value, fade_ms):
        now = ticks_ms()
        if control == "ON":
            control, value = "PWM", self.last_on
        elif control == "OFF":
            control, value = "PWM", 0
        if control == "AUTO":
            if self.control != "AUTO":
                self.pi.reset(self.dimmer.duty)
            self.control, self.value = "AUTO", value
        else:
            self.control, self.value = "PWM", value
            if value > 0:
                self.last_on = value
            self.dimmer.set_level(value, fade_ms, now)
        self.publish_state()

    def publish_state(self):
        if not self.mqtt.connected:
            return  # sent on the next connect
        d = self.dimmer
        level = d.target if self.control == "PWM" else d.level
        duty = d.duty if self.control == "AUTO" else curve(d.target, d.gamma, d.lo, d.hi)
        self._state_value = round(level)
        msg = '{"control": "%s", "value": %s, "unit": "%%", "duty": %s, "state": "%s", "brightness": %d%s}' % (
            self.control, _num(level), _num(duty, 3), "ON" if duty > 0 else "OFF",
            round(level * 2.55), ', "target": %s' % _num(self.value) if self.control == "AUTO" else "")
        self.mqtt.publish(self.t_state, msg, True, 1)

    def discovery(self):
        cfg = self.cfg
        dev = '"avty_t": "%s", "dev": {"ids": ["luxnode_%s"], "name": "%s", "mf": "luxnode", "mdl": "%s", "sw": "%s"}}' % (
            self.t_status, cfg.device_id, cfg.device_id, cfg.board.get("name"), VERSION)
        self.mqtt.publish(
            "homeassistant/sensor/%s/light/config" % cfg.device_id,
            '{"name": "Light", "uniq_id": "%s_light", "stat_t": "%s", "val_tpl": "{{ value_json.light }}", '
            '"unit_of_meas": "%%", "stat_cla": "measurement", %s' % (cfg.device_id, self.t_light, dev), True, 1)
        self.mqtt.publish(
            "homeassistant/light/%s/led/config" % cfg.device_id,
            '{"name": "LED", "uniq_id": "%s_led", "schema": "json", "cmd_t": "%s", "stat_t": "%s", '
            '"brightness": true, "supported_color_modes": ["brightness"], %s' % (
                cfg.device_id, self.t_set.decode(), self.t_state, dev), True, 1)

    def telemetry(self):
        gc.collect()
        msg = json.dumps({
            "uptime_s": ticks_diff(ticks_ms(), self.started) // 1000,
            "rssi": self.wifi.rssi() if self.wifi else None,
            "free_heap": gc.mem_free(),
            "reconnects": max(0, self.mqtt.connects - 1),
            "version": VERSION,
        })
        self.mqtt.publish(self.cfg.topic("telemetry"), msg)

    # -- loop --

    def step(self):
        now = ticks_ms()
        if self.wifi is None or self.wifi.poll(now):
            self.mqtt.poll(_LOOP_MS)
        else:
            if self.mqtt.state:
                self.mqtt.disconnect()
            sleep_ms(_LOOP_MS)
        now = ticks_ms()
        if ticks_diff(now, self._next_sample) >= 0:
            self.sample(now)
        self.dimmer.poll(now)
        self.store.poll(now, (self.control, self.value, self.last_on))
        if ticks_diff(now, self._next_telemetry) >= 0:
            self._next_telemetry = ticks_add(now, int(self.cfg.telemetry_s * 1000))
            if self.mqtt.connected:
                self.telemetry()
        if not self._stable and ticks_diff(now, self.started) >= _STABLE_MS:
            self._stable = True
            safemode.stable()

    def sample(self, now):
        self._next_sample = ticks_add(now, self.cfg.sample_ms)
        dt = ticks_diff(now, self._last_sample) / 1000
        self._last_sample = now
        light = self.sensor.sample()
        if self.control == "AUTO":
            self.dimmer.set_duty(self.pi.step(self.value, light, dt))
        if self.mqtt.connected and self.sensor.due(now):
            self.mqtt.publish(self.t_light, '{"light": %s, "unit": "%%", "raw": %d}' % (
                _num(light), self.sensor.raw), True)
            if self.control == "AUTO" and round(self.dimmer.level) != self._state_value:
                self.publish_state()

    def run(self):
        wdt = machine.WDT(timeout=int(self.cfg.wdt_s * 1000)) if self.cfg.wdt_s else None
        while True:
            self.step()
            if wdt:
                wdt.feed()


def _num(x, digits=1):
    """Short decimal text: 50, 42.5, 0.218 (not 66.09999999999999)."""
    t = "%.*f" % (digits, x)
    if "." in t:
        t = t.rstrip("0").rstrip(".")
    return "0" if t == "-0" else t


def main():
    try:
        cfg = config.load()
        node = Node(cfg)
    except config.ConfigError as e:
        log("config error: %s" % e)
        raise
    try:
        node.run()
    except KeyboardInterrupt:
        raise
    except Exception as e:  # count a crash towards safe mode and start again
        log("crashed: %r; resetting" % e)
        sleep_ms(2000)
        machine.reset()
