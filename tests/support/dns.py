"""A small DNS server for a simulated station (LUXNODE_SIM_DNS_SERVER): the firmware asks the
station's DNS server itself, always on port 53, so it listens on UDP port 53 of a loopback
address of its own (127.x.y.z, chosen at random so parallel runs do not meet). It answers
A questions for one name with 127.0.0.1 after a delay the test sets, refuses every
question (RCODE 5), or cuts every answer short (a hostile one), and counts the questions it got."""

import random
import socket
import threading

import pytest

NXDOMAIN = 3
REFUSED = 5


class DNSServer:
    def __init__(self, name="broker.test", delay_s=0.0, refuse=False, cut_short=False):
        self.name = name
        self.delay_s = delay_s
        self.refuse = refuse
        self.cut_short = cut_short
        self.questions = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.address = self._bind()
        self.sock.settimeout(0.1)  # so that close() ends the thread at once
        self._closed = False
        self._timers = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _bind(self):
        for _ in range(20):
            address = "127.%d.%d.%d" % (random.randrange(1, 255), random.randrange(256), random.randrange(2, 255))
            try:
                self.sock.bind((address, 53))
                return address
            except OSError as e:
                if isinstance(e, PermissionError):
                    self.sock.close()
                    pytest.skip(f"a DNS server on port 53 needs root or CAP_NET_BIND_SERVICE: {e}")
        self.sock.close()
        pytest.skip("no free loopback address for a DNS server on port 53")

    def _serve(self):
        while not self._closed:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                continue  # a timeout, or closed
            if len(data) < 17 or data[2] & 0x80:
                continue  # not a question
            end = data.index(b"\0", 12) + 5
            question = data[12:end]
            self.questions += 1
            known = not self.refuse and _name(question) == self.name and question[-4:] == b"\0\1\0\1"
            rcode = REFUSED if self.refuse else 0 if known else NXDOMAIN
            answer = b"\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4" + bytes((127, 0, 0, 1)) if known else b""
            reply = data[:2] + bytes((0x81, 0x80 | rcode, 0, 1, 0, int(known), 0, 0, 0, 0)) + question + answer
            if self.cut_short:
                reply = reply[:len(reply) - len(answer) + 4]  # the answer's name and type, no more
            timer = threading.Timer(self.delay_s, self._send, (reply, peer))
            self._timers.append(timer)
            timer.start()

    def _send(self, answer, peer):
        try:
            self.sock.sendto(answer, peer)
        except OSError:
            pass  # closed meanwhile

    def close(self):
        self._closed = True
        self._thread.join(15)  # returns once the loop saw the flag; 15 s for a starved thread
        for timer in self._timers:
            timer.cancel()
        self.sock.close()


def _name(question):
    labels, i = [], 0
    while question[i]:
        labels.append(question[i + 1:i + 1 + question[i]].decode())
        i += question[i] + 1
    return ".".join(labels)
