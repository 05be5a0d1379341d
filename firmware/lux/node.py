# The light node's main loop: sensor, dimmer, controller, saved state, WiFi and MQTT,
# none of them blocking. Code needed only now and then (config, wiring, safe
# mode, discovery, commands, the AUTO controller) is loaded on demand.
import gc
import os
from time import sleep_ms, ticks_add, ticks_diff, ticks_ms

import machine
from micropython import const

from . import forget
from .dimmer import curve
from .mqtt import UP

VERSION = "0.1.0"
_LOOP_MS = const(20)  # longest wait for network input per loop
_STABLE_MS = const(30000)  # running this long clears the boot-loop count
_COMMANDS_MS = const(30000)  # lux.commands stays loaded this long after a command
_RESET_PAUSE_MS = const(1000)  # before a crash reset: the log line leaves; under the ESP8266's 1.6 s watchdog
TYPE_CHECKING = const(0)
if TYPE_CHECKING:  # for the annotations only: compiled out, no code, no names on the board
    from _mpy_shed.time_mp import _TicksMs  # what the stubs give ticks_ms()
    from network import WLAN

    from .clock import Clock
    from .control import PI
    from .dimmer import Dimmer
    from .mqtt import MQTTClient
    from .sensor import LightSensor
    from .wifi import WiFi


def log(msg):
    print("luxnode:", msg)


class Node:
    """The running node; lux.start wires its parts from the configuration and sets
    these fields (annotations only: they cost the board no RAM)."""

    device_id: str
    board: str
    prefix: str
    fade_ms: int
    sample_ms: int
    telemetry_ms: int
    wdt_ms: int
    save_ms: int
    started: "_TicksMs"
    uptime_ms: int
    control: str  # PWM or AUTO
    value: float  # PWM: brightness %; AUTO: the light % to hold
    last_on: float  # the level ON restores
    saved: "tuple | None"  # (control, value, last_on) as state.json holds it
    dimmer: "Dimmer"
    sensor: "LightSensor"
    kp: float
    ki: float
    pi: "PI | None"  # the AUTO controller, loaded for AUTO only
    ssid: str
    wifi_password: "str | None"  # None once this boot gave it to the port
    wlan: "WLAN | None"  # None without a wifi section
    wifi: "WiFi | None"  # joining the access point
    clock: "Clock | None"  # setting the clock before a certificate can be checked
    mqtt: "MQTTClient"
    t_set: bytes
    t_light: bytes
    t_state: bytes
    t_error: bytes
    _changed_at: "_TicksMs | None"  # when the LED state changed, until it is saved
    _next_sample: "_TicksMs"
    _last_sample: "_TicksMs"
    _next_telemetry: "_TicksMs"
    _state_value: "int | None"  # the level last published on state (AUTO republishes on change)
    _stable: bool  # ran long enough to clear the boot-loop count
    _announced: bool  # status, discovery and state went out on this connection
    _commands_at: "_TicksMs | None"  # the last command, while lux.commands is loaded

    # -- MQTT --

    def on_connect(self):
        self._announced = self._announce("connected")

    def _announce(self, kind):
        """lux.announce.connected or .telemetry. Loading it may run out of memory: that
        costs only this announcement (the connection stays), and says whether it went."""
        try:
            from . import announce

            getattr(announce, kind)(self, VERSION)
            return True
        except Exception as e:
            log("%s messages failed: %r" % (kind, e))
            return False
        finally:
            forget("announce")

    def on_message(self, topic, payload, size):
        try:
            if bytes(topic) != self.t_set:
                return
            from . import commands  # loaded on demand, unloaded after a quiet while (step)

            self._commands_at = ticks_ms()
            commands.handle(self, payload, size)
        except Exception as e:  # out of memory too: one error, the message still acknowledged
            gc.collect()
            log("command failed: %r" % e)
            self.mqtt.publish(self.t_error, '{"error": "command failed: %s"}' % type(e).__name__)

    def apply(self, control, value, fade_ms):
        if control == "ON":
            control, value = "PWM", self.last_on
        elif control == "OFF":
            control, value = "PWM", 0
        if control == "AUTO":
            if self.pi is None:  # the controller is loaded for AUTO only
                from .control import PI

                self.pi = PI(self.kp, self.ki, 0.0, self.dimmer.hi)
                self.pi.reset(self.dimmer.duty)
        else:
            if self.pi is not None:
                self.pi = None
                forget("control")
            if value > 0:
                self.last_on = value
            self.dimmer.set_level(value, fade_ms, ticks_ms())
        self.control, self.value = control, value
        self._changed_at = ticks_ms()  # saved once it has settled (step)
        self.publish_state()

    def publish_state(self):
        if self.mqtt.state != UP:
            return  # sent on the next connect
        d = self.dimmer
        if self.control == "AUTO":
            level, duty = d.level, d.duty
        else:  # during a fade: where it is going
            level, duty = d.target, curve(d.target, d.gamma, d.lo, d.hi)
            if 0 < duty < d.least:
                duty = d.least  # what the LED gets (lux.dimmer)
        self._state_value = round(level)
        self.mqtt.publish(self.t_state, '{"control": "%s", "value": %s, "unit": "%%", "duty": %s, "state": "%s", '
                          '"brightness": %d%s}' % (
                              # a lit duty under 0.001 (the ESP32's least is 1/65535) in 2 digits, not 0
                              self.control, _num(level), "%.2g" % duty if 0 < duty < 0.001 else _num(duty, 3),
                              "ON" if duty > 0 else "OFF",
                              round(level * 2.55),
                              ', "target": %s' % _num(self.value) if self.control == "AUTO" else ""), True, 1)

    def save(self):
        """The LED state to flash, only if it differs from what is there (spares the flash)."""
        state = (self.control, self.value, self.last_on)
        if state != self.saved:
            with open("state.tmp", "w") as f:
                f.write('{"control": "%s", "value": %s, "last_on": %s}' % state)
            os.rename("state.tmp", "state.json")
            self.saved = state

    # -- loop --

    def step(self):
        now = ticks_ms()
        if self.wifi:  # joining the access point
            if self.wifi.poll(now):
                self.wifi_password = self.wifi.password  # None once given: once a boot (flash on the ESP8266)
                self.wifi = None
                forget("wifi")
            else:
                sleep_ms(_LOOP_MS)
        elif self.wlan and not self.wlan.isconnected():
            log("wifi: lost %s" % self.ssid)
            if self.mqtt.state:
                from .mqttconn import hangup

                hangup(self.mqtt)
            from .wifi import WiFi

            self.wifi = WiFi(self.wlan, self.ssid, self.wifi_password, log, tried=now)
        elif self.clock:  # certificate mode: no TLS handshake before the clock is set
            if self.clock.poll(_LOOP_MS):
                self.clock = None
                forget("clock")
        else:
            self.mqtt.poll(_LOOP_MS)
        now = ticks_ms()
        if ticks_diff(now, self._next_sample) >= 0:
            self.sample(now)
        self.dimmer.poll(now)
        if self._changed_at is not None and ticks_diff(now, self._changed_at) >= self.save_ms:
            self._changed_at = None
            self.save()
        if ticks_diff(now, self._next_telemetry) >= 0:
            # Uptime summed per period (at most a day): one ticks_diff spans only
            # 2**29 ms (6.2 days) on the chip.
            self.uptime_ms += self.telemetry_ms + ticks_diff(now, self._next_telemetry)
            self._next_telemetry = ticks_add(now, self.telemetry_ms)
            if self.mqtt.state == UP:
                if self._announced:
                    self._announce("telemetry")
                else:  # status and discovery failed on connect: again now
                    self._announced = self._announce("connected")
        if self._commands_at is not None and ticks_diff(now, self._commands_at) >= _COMMANDS_MS:
            self._commands_at = None
            forget("commands")
        if not self._stable and ticks_diff(now, self.started) >= _STABLE_MS:
            self._stable = True
            try:  # out of memory here must not end in a reset that counts towards safe mode
                from . import safemode

                safemode.stable()
            except Exception as e:
                log("boot count not cleared: %r" % e)
            forget("safemode")

    def sample(self, now):
        self._next_sample = ticks_add(now, self.sample_ms)
        light = self.sensor.sample()
        if self.pi:  # AUTO
            self.pi.drive(self.dimmer, self.value, light, ticks_diff(now, self._last_sample) / 1000)
        self._last_sample = now
        if self.mqtt.state == UP and self.sensor.due(now):
            self.mqtt.publish(self.t_light, '{"light": %s, "unit": "%%", "raw": %d}' % (
                _num(light), self.sensor.raw), True)
            if self.control == "AUTO" and round(self.dimmer.level) != self._state_value:
                self.publish_state()

    def run(self):
        wdt = None
        if self.wdt_ms:
            try:
                wdt = machine.WDT(timeout=self.wdt_ms)
            except (TypeError, ValueError):  # the ESP8266's period is fixed (1.6-3.2 s, whatever it says)
                log("watchdog: the port's fixed period, not wdt_s")
                wdt = machine.WDT()
            self.mqtt.feed = wdt.feed  # around the calls that may block (a stalled write, DNS)
            if self.clock:
                self.clock.feed = wdt.feed
        try:
            while True:
                self.step()
                if wdt:
                    wdt.feed()
        except KeyboardInterrupt:
            raise
        except Exception as e:  # count a crash towards safe mode and start again
            log("crashed: %r; resetting" % e)
            if wdt:
                wdt.feed()
            sleep_ms(_RESET_PAUSE_MS)
            machine.reset()


def _num(value, digits=1):
    """Short decimal text: 50, 42.5, 0.218 (not 66.09999999999999)."""
    t = "%.*f" % (digits, value)
    if "." in t:
        t = t.rstrip("0").rstrip(".")
    return "0" if t == "-0" else t
