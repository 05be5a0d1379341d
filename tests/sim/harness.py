"""Drive `luxnode sim` as a user would: the command in a subprocess, paho on the broker."""

import json
import os
import signal
import subprocess
import sys
import threading

import paho.mqtt.client as paho

from tests.support.micropython import FAITHFUL
from tests.support.net import wait_for


def faithful_args(args):
    """Under LUXNODE_FAITHFUL=<chip>: the same command on the board-faithful build of that chip."""
    if not FAITHFUL or {"--faithful", "--micropython", "--board", "--fs"} & set(args):
        return list(args)  # a test that chose its interpreter, board or root keeps it
    return [*args, "--board", FAITHFUL, "--faithful"]


def process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie waiting for its reaper counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class SimCommand:
    """`python -m luxnode sim ARGS` with its output collected line by line."""

    def __init__(self, *args, env=None):
        environ = dict(os.environ, PYTHONUNBUFFERED="1")
        environ.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "luxnode", "sim", *faithful_args(args)], env=environ,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, text, timeout=15.0, after=0):
        return wait_for(lambda: next((l for l in self.lines[after:] if text in l), None), timeout,
                        what=f"a line with {text!r} from luxnode sim; got:\n" + "\n".join(self.lines[-30:]))

    def node_pid(self, device_id):
        line = self.wait_line(f"[{device_id}] sim: started (pid ")
        return int(line.split("(pid ")[1].split(",")[0])

    def output(self):
        return "\n".join(self.lines)

    def kill(self):
        """SIGKILL the command alone: its nodes must die with it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self):
        """Ctrl-C, as a user ends it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._reader.join(5)
        return self.proc.returncode


class Observer:
    """A paho client that records every message under a filter and can publish."""

    def __init__(self, port, topic="luxnode/#", host="127.0.0.1", username=None, password=None):
        self.messages = []  # (topic, payload bytes, retain)
        self.changed = threading.Condition()
        self.topic = topic
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"observer-{os.getpid()}-{id(self)}")
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        with self.changed:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def publish(self, topic, payload, qos=1, retain=False):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(10)
        return info

    def count(self):
        return len(self.messages)

    def payloads(self, topic, after=0):
        return [p for t, p, r in self.messages[after:] if t == topic]

    def wait(self, topic, predicate=lambda payload: True, timeout=15.0, after=0):
        """The first payload on ``topic`` (from message number ``after``) that satisfies ``predicate``."""
        def find():
            for payload in self.payloads(topic, after):
                if predicate(payload):
                    return payload or b"<empty>"
            return None
        return wait_for(find, timeout, what=f"a message on {topic} satisfying the test; saw "
                        + repr(self.payloads(topic, after)[-5:]))

    def wait_json(self, topic, timeout=15.0, after=0, **expected):
        """The first JSON payload on ``topic`` that has the ``expected`` key/values."""
        def matches(payload):
            try:
                doc = json.loads(payload)
            except ValueError:
                return False
            return isinstance(doc, dict) and all(doc.get(k) == v for k, v in expected.items())
        return json.loads(self.wait(topic, matches, timeout, after))

    def wait_status(self, device, status=b"online", timeout=15.0, after=0):
        return self.wait(f"luxnode/{device}/status", lambda p: p == status, timeout, after)

    def set_pwm(self, device, value, timeout=15.0):
        """Command a PWM level and wait for the state that reflects it; returns that state."""
        mark = self.count()
        self.publish(f"luxnode/{device}/set", json.dumps({"control": "PWM", "value": value, "unit": "%"}))
        return self.wait_json(f"luxnode/{device}/state", timeout, mark, control="PWM", value=value)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def light_of(payload):
    try:
        return json.loads(payload)["light"]
    except (ValueError, KeyError, TypeError):
        return None


def settled(observer, topic, target, tolerance, timeout, after=0, samples=3):
    """Wait until ``samples`` consecutive light readings lie within target +- tolerance."""
    def check():
        values = [light_of(p) for p in observer.payloads(topic, after)]
        run = 0
        for v in values:
            run = run + 1 if v is not None and abs(v - target) <= tolerance else 0
            if run >= samples:
                return values
        return None
    return wait_for(check, timeout, what=f"{topic} to settle at {target} +- {tolerance}; saw "
                    + repr([light_of(p) for p in observer.payloads(topic, after)][-8:]))

