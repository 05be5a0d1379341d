"""Serve the dashboard's static files and its connection settings over HTTP.

The page needs the broker's WebSocket port, the topic prefix and the operator's
credentials; ``/config.json`` hands them over. Because that file holds a secret,
the server listens on loopback only and answers only requests whose Host header
names a loopback address, so a web page on another origin cannot reach it by
DNS rebinding.
"""

import json
import threading
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DASHBOARD_DIR = Path(__file__).with_name("dashboard")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, page_config: bytes, **kwargs):
        self.page_config = page_config
        super().__init__(*args, directory=str(DASHBOARD_DIR), **kwargs)

    def do_GET(self):
        if not self._host_is_loopback():
            self.send_error(HTTPStatus.FORBIDDEN, "the lab dashboard answers on localhost only")
            return
        if self.path.split("?")[0] == "/config.json":
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(self.page_config)))
            self.end_headers()
            self.wfile.write(self.page_config)
            return
        super().do_GET()

    def do_HEAD(self):
        if not self._host_is_loopback():
            self.send_error(HTTPStatus.FORBIDDEN)
            return
        super().do_HEAD()

    def _host_is_loopback(self) -> bool:
        host = self.headers.get("Host", "")
        name = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
        return name in LOOPBACK_NAMES

    def end_headers(self):
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format, *args):  # the lab's status line owns the terminal
        pass


class DashboardServer:
    """The dashboard on http://127.0.0.1:PORT/, served from a background thread."""

    def __init__(self, page_config: dict, port: int = 0, host: str = "127.0.0.1"):
        handler = partial(_Handler, page_config=json.dumps(page_config).encode())
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="luxnode-dashboard", daemon=True)

    def start(self) -> "DashboardServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
