# Messages the node sends now and then: on each connect its status, Home
# Assistant MQTT discovery (retained configs for the light sensor and the LED),
# its state and telemetry; telemetry again once a period. Loaded for the
# occasion, then unloaded.
import gc
import json
from time import ticks_diff, ticks_ms


def connected(node, version):
    node.mqtt.publish("%s/%s/status" % (node.prefix, node.device_id), "online", True, 1)
    discovery(node.mqtt, node.prefix, node.device_id, node.board, version)
    node.publish_state()
    node.sensor.sent = None  # publish the next reading
    telemetry(node, version)  # a dashboard shows it at once, not a period later


def discovery(mqtt, prefix, device_id, board, version):
    base = "%s/%s/" % (prefix, device_id)
    dev = '"avty_t": "%sstatus", "dev": {"ids": ["luxnode_%s"], "name": "%s", "mf": "luxnode", "mdl": "%s", ' \
        '"sw": "%s"}}' % (base, device_id, device_id, board, version)
    mqtt.publish(
        "homeassistant/sensor/%s/light/config" % device_id,
        '{"name": "Light", "uniq_id": "%s_light", "stat_t": "%slight", "val_tpl": "{{ value_json.light }}", '
        '"unit_of_meas": "%%", "stat_cla": "measurement", %s' % (device_id, base, dev), True, 1)
    mqtt.publish(
        "homeassistant/light/%s/led/config" % device_id,
        '{"name": "LED", "uniq_id": "%s_led", "schema": "json", "cmd_t": "%sset", "stat_t": "%sstate", '
        '"brightness": true, "supported_color_modes": ["brightness"], "qos": 1, %s' % (device_id, base, base, dev), True, 1)


def telemetry(node, version):
    rssi = None
    if node.wlan:
        try:
            rssi = node.wlan.status("rssi")
        except (OSError, ValueError, TypeError):
            pass
    gc.collect()
    node.mqtt.publish("%s/%s/telemetry" % (node.prefix, node.device_id), json.dumps({
        # Whole periods summed so far plus the part of this one gone by.
        "uptime_s": (node.uptime_ms + node.telemetry_ms - ticks_diff(node._next_telemetry, ticks_ms())) // 1000,
        "rssi": rssi,
        "free_heap": gc.mem_free(),
        "reconnects": max(0, node.mqtt.connects - 1),
        "version": version,
    }))
