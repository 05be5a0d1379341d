#!/usr/bin/env bash
# One board, one command: flash MicroPython, deploy the luxnode firmware, provision credentials.
#
#   ./flash.sh PORT [BOARD]          BOARD: esp32 (default), esp32s3, esp32c3, esp8266, sim
#
# Asks for the MicroPython .bin (after saying which build to download), the WiFi network, its
# password (not echoed), the device id, on an ESP8266 the transport (only none works there),
# and the broker.
# Environment (each skips its question): FIRMWARE=path/to/micropython.bin, WIFI_SSID,
# LUXNODE_WIFI_PASSWORD, DEVICE_ID, BROKER=host[:port], TLS=psk|cert|none, CA=ca.pem
# (with TLS=cert), SKIP_FLASH=1 keeps the MicroPython already on the board.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: ./flash.sh PORT [BOARD]   (e.g. ./flash.sh /dev/ttyUSB0 esp32)" >&2
    exit 2
fi
port=$1
board=${2:-esp32}
luxnode=(luxnode)
command -v luxnode >/dev/null 2>&1 || luxnode=(python3 -m luxnode)

ask() {  # ask VAR "question" [default]
    local var=$1 question=$2 default=${3:-} answer
    if [ -n "${!var:-}" ]; then return; fi
    if [ -n "$default" ]; then question="$question [$default]"; fi
    read -r -p "$question: " answer || true
    printf -v "$var" '%s' "${answer:-$default}"
    if [ -z "${!var}" ]; then echo "flash.sh: $question is needed" >&2; exit 2; fi
}

skip_flash=${SKIP_FLASH:-}
[ "$board" = sim ] && skip_flash=1   # the unix port has no flash to write
if [ -z "$skip_flash" ] && [ -z "${FIRMWARE:-}" ]; then
    # Without --firmware it says which build to download and exits 1; 2 is an error (e.g. an unknown board).
    status=0
    "${luxnode[@]}" flash --port "$port" --board "$board" || status=$?
    if [ "$status" -gt 1 ]; then exit "$status"; fi
    ask FIRMWARE "Path of the downloaded MicroPython .bin"
fi

ask WIFI_SSID "WiFi network (SSID)"
if [ -z "${LUXNODE_WIFI_PASSWORD+set}" ]; then
    read -r -s -p "WiFi password (empty for an open network): " LUXNODE_WIFI_PASSWORD || true
    echo
fi
export LUXNODE_WIFI_PASSWORD  # provision reads it from the environment, never from argv
default_host=$(hostname -I 2>/dev/null | awk '{print $1}')
ask DEVICE_ID "Device id" "node-1"
if [ "$board" = esp8266 ]; then   # axTLS: no TLS-PSK, no certificate checking; the user must say so
    ask TLS "ESP8266 MicroPython has neither TLS-PSK nor certificate checking; type none for plain MQTT (trusted network only)"
fi
if [ "${TLS:-}" = cert ]; then
    ask CA "CA certificate the node checks the broker with (path to a .pem)"
fi
ask BROKER "Broker as the board reaches it (host[:port])" "${default_host:-}"

if [ -z "$skip_flash" ]; then
    echo "== 1/3 flash MicroPython"
    "${luxnode[@]}" flash --port "$port" --board "$board" --firmware "$FIRMWARE"
fi
echo "== 2/3 deploy the firmware"
# lux/ in the ROMFS partition where the board has one (ESP8266 FLASH_2M_ROMFS): its code then
# costs no heap; on the filesystem otherwise.
"${luxnode[@]}" deploy --port "$port" --board "$board" --timeout 20 --no-reset --romfs-if-present
echo "== 3/3 provision $DEVICE_ID"
"${luxnode[@]}" provision --port "$port" --board "$board" --device-id "$DEVICE_ID" \
    --wifi-ssid "$WIFI_SSID" --broker "$BROKER" ${TLS:+--tls "$TLS"} ${CA:+--ca "$CA"}
echo "done: '${luxnode[*]} devices' lists it; '${luxnode[*]} watch $DEVICE_ID' shows it live"
