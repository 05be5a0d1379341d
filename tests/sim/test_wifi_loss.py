"""WiFi loss end to end: the real firmware on the unix port, its access point taken away
and given back by the simulated board, against a real mosquitto (on the faithful chip's build
under LUXNODE_FAITHFUL=<chip>)."""

import json

from luxnode.sim import SimNode, node_config, write_root
from tests.sim.harness import Observer
from tests.support.micropython import FAITHFUL
from tests.support.net import wait_for

STATE = "luxnode/node-1/state"


def test_wifi_loss_keeps_the_bench_running_and_the_node_comes_back(mosquitto, tmp_path):
    broker = mosquitto("allow_anonymous true\n")
    root = write_root(tmp_path / "node-1", node_config("node-1", "127.0.0.1", broker.port, keepalive=3,
                                                       interval_s=1, board=FAITHFUL or "sim"))
    obs = Observer(broker.port)
    node = SimNode(root, ambient=20, output=lambda line: None, bridge=False, faithful=bool(FAITHFUL)).start()
    try:
        obs.wait_status("node-1")
        mark = obs.count()
        obs.publish("luxnode/node-1/set", json.dumps({"control": "PWM", "value": 100, "unit": "%",
                                                      "fade_ms": 6000}))
        obs.wait_json(STATE, after=mark, control="PWM", value=100)
        lines = node.count
        node.set_wifi(False)  # mid-fade

        node.wait_line("luxnode: wifi: lost luxnode-sim", after=lines)
        # The node hung up: the broker publishes its last will.
        obs.wait_status("node-1", b"offline", after=mark)
        # Offline, the sensor is still read and the fade runs to its end.
        first = node.read_bench()
        assert first["led"] < 0.99
        last = wait_for(lambda: (b := node.read_bench())["led"] >= 0.99 and b, 15,
                        what="the fade to finish while offline")
        assert last["adc_reads"] > first["adc_reads"]
        assert not any("luxnode: connected to" in line for line in list(node.lines)[-(node.count - lines):])

        mark = obs.count()
        lines = node.count
        node.set_wifi(True)
        node.wait_line("luxnode: wifi: connected to luxnode-sim", after=lines)
        obs.wait_status("node-1", after=mark)
        obs.set_pwm("node-1", 30)  # resubscribed: a new command is applied
        assert wait_for(lambda: abs(node.read_bench()["led"] - 0.3 ** 2.2) < 0.01, 10,
                        what="the LED at 30 % after the command")
    finally:
        node.stop()
        obs.close()
