# MicroPython side of the client interop tests: runs lux.mqtt.MQTTClient with the
# settings in the ARGS line (JSON), prints one line per event and obeys
# commands on stdin: "pub TOPIC QOS RETAIN PAYLOAD", "inflight", "quit".
import json
import machine  # noqa: F401 (the board first, as a node has it: on an ESP8266 board, its axTLS)
import select
import sys
import time

from lux import config
from lux.mqtt import MQTTClient

args = json.loads(ARGS)  # noqa: F821 (prepended by the test)


def log(msg):
    print("log", msg)


def on_message(topic, payload, size):
    print("msg", bytes(topic).decode(), size, bytes(payload).hex())


def on_connect():
    print("connected", c.connects)


class Settings:  # the fields of lux.config.Config that tls_context() reads
    tls_mode = "psk" if args.get("psk_key") else "cert" if args.get("ca") else None
    psk_identity = args.get("psk_identity")
    psk_key = bytes.fromhex(args.get("psk_key") or "")
    ca = args.get("ca")


if args.get("ntp_server"):  # certificate mode on a chip's clock (2000-01-01): set it first, as the node does
    from lux.clock import Clock

    clock = Clock(args["ntp_server"], log)
    while not clock.poll(50):
        pass
ctx = config.tls_context(Settings)
c = MQTTClient(args.get("client_id", "mp"), args.get("host", "127.0.0.1"), args["port"], args.get("user"), args.get("password"),
               args.get("keepalive", 60), args.get("clean", True), ctx, args.get("host") if args.get("ca") else None,
               will=args.get("will"), rx_buffer=args.get("rx_buffer", 256),
               backoff_max_ms=args.get("backoff_max_ms", 2000), on_message=on_message,
               subs=args.get("subs", ()), on_connect=on_connect, log=log)
stdin = select.poll()
stdin.register(sys.stdin, select.POLLIN)
slow_ms = args.get("slow_ms", 0)  # a slow application: each message costs this long
if slow_ms:
    def on_slow(topic, payload, size):
        time.sleep_ms(slow_ms)
    c.on_message = on_slow
while True:
    c.poll(10)
    if stdin.poll(0):
        words = sys.stdin.readline().rstrip("\n").split(" ", 4)
        if words[0] == "pub":
            print("published", c.publish(words[1], words[4], words[3] == "1", int(words[2])))
        elif words[0] == "inflight":
            print("inflight", len(c._inflight))
        else:
            print("bye")
            break
