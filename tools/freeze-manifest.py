# Freezes the luxnode package (lux/) into a MicroPython build: its code then runs from
# flash and costs the heap nothing. The ESP8266 needs this (or ROMFS): its whole heap is
# 38 KB, and lux/*.mpy loaded into it leave little margin. The port's own frozen modules
# come first; on the ESP8266 that is the base set (ports/esp8266/boards/manifest.py), without
# the 2 MiB boards' asyncio, ssd1306, umqtt and upysh, which luxnode does not use. Needs 2 MiB flash or more:
#   make -C ports/esp8266 BOARD=ESP8266_GENERIC FROZEN_MANIFEST=/path/to/luxnode/tools/freeze-manifest.py
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/luxnode/tools/freeze-manifest.py
# then flash the build and deploy boot.py, main.py, config.json and board.json only
# (a lux/ folder on the board's filesystem would shadow the frozen one).
# The board-faithful simulation's frozen-lux build includes this file with port_manifest=False
# (luxnode.sim.port), so what it measures is this lux.
options.defaults(port_manifest=True)
if options.port_manifest:
    include("$(PORT_DIR)/boards/manifest.py")
package("lux", base_path="../firmware")
