"""A small SNTP server (RFC 4330) on 127.0.0.1 and an ephemeral UDP port: the time source a lab
gives its nodes, for tests of firmware that sets the board's clock before a TLS handshake."""

import socket
import struct
import threading
import time

NTP_1970 = 2208988800  # seconds from 1900-01-01 to 1970-01-01


class SNTPServer:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)  # the loop looks at _closed this often
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._closed:
            try:
                data, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) < 48 or data[0] & 7 != 3:  # only client requests
                continue
            self.requests += 1
            now = time.time() + NTP_1970
            stamp = struct.pack("!II", int(now), int((now % 1) * 2**32))
            # LI 0, version 4, mode 4 (server); stratum 1; the client's transmit time as originate.
            answer = bytes((0x24, 1, 6, 0xEC)) + bytes(8) + b"LOCL" + stamp + data[40:48] + stamp + stamp
            self.sock.sendto(answer, peer)

    def close(self):
        # The thread ends before the socket closes: one still blocked on a closed descriptor
        # reads from whatever socket reuses that number next.
        self._closed = True
        self._thread.join(15)  # returns once the loop saw the flag; 15 s for a starved thread
        self.sock.close()
