# Freezes the luxnode package (lux/) into a MicroPython build: its code then runs from
# flash and costs the heap nothing. The ESP8266 needs this (or ROMFS): its whole heap is
# 38 KB, and lux/*.mpy loaded into it do not fit. For an ESP8266 with 2 MiB flash or more:
#   make -C ports/esp8266 BOARD=ESP8266_GENERIC FROZEN_MANIFEST=/path/to/luxnode/tools/freeze-manifest.py
# then flash the build and deploy boot.py, main.py, config.json and board.json only (a
# lux/ folder on the board's filesystem would shadow the frozen one).
include("$(BOARD_DIR)/manifest_2MiB.py")
package("lux", base_path="../firmware")
