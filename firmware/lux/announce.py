# Home Assistant MQTT discovery (retained configs for the light sensor and the
# LED). Loaded for each connect and unloaded again: it is not needed in between.


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
        '"brightness": true, "supported_color_modes": ["brightness"], %s' % (device_id, base, base, dev), True, 1)
