"""Serve the dashboard's static files, its connection settings and recent history.

The page needs the broker's WebSocket port, the topic prefix and the dashboard
account's credentials; ``/config.json`` hands them over, ``/recent.json`` the
history the lab keeps (luxnode.lab.recent). Both are for the lab's owner only,
as Jupyter does it: ``luxnode lab`` prints a URL holding a random token; opening
it sets a cookie (HttpOnly, SameSite=Strict) and redirects to the bare page, and
the two files answer only requests carrying that cookie, compared in constant
time. Any other local user can fetch the page itself, which holds no secret.
The server listens on loopback only and answers only requests whose Host header
names a loopback address, so a web page on another origin cannot reach it by
DNS rebinding.
"""

import hmac
import ipaddress
import json
import threading
from functools import partial
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DASHBOARD_DIR = Path(__file__).with_name("dashboard")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
NO_ACCESS = ("this page's settings are for the lab's owner: open the dashboard through the URL "
             "'luxnode lab' printed (it holds the access token)")


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, server_side, **kwargs):
        self.server_side = server_side
        super().__init__(*args, directory=str(DASHBOARD_DIR), **kwargs)

    def do_GET(self):
        if not self._host_is_loopback():
            self.send_error(HTTPStatus.FORBIDDEN, "the lab dashboard answers on localhost only")
            return
        url = urlsplit(self.path)
        token = parse_qs(url.query).get("token")
        if token is not None:
            self._log_in(token[0], url.path)
        elif url.path == "/config.json":
            self._send_private(self.server_side.page_config)
        elif url.path == "/recent.json":
            history = self.server_side.history
            self._send_private(json.dumps(history.snapshot() if history else {"nodes": {}}).encode())
        else:
            super().do_GET()

    def do_HEAD(self):
        if not self._host_is_loopback():
            self.send_error(HTTPStatus.FORBIDDEN)
            return
        super().do_HEAD()

    def _log_in(self, token: str, path: str) -> None:
        if not self.server_side.token_matches(token):
            self.send_error(HTTPStatus.FORBIDDEN, "wrong token: open the URL 'luxnode lab' printed")
            return
        # The cookie carries the token; the redirect takes it out of the address bar and history.
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Set-Cookie", f"{self.server_side.cookie_name}={self.server_side.token}; "
                                       "HttpOnly; SameSite=Strict; Path=/")
        self.send_header("Location", path or "/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_private(self, body: bytes) -> None:
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie", ""))
        except Exception:  # http.cookies.CookieError: an unparsable header is no cookie
            cookie = SimpleCookie()
        morsel = cookie.get(self.server_side.cookie_name)
        if morsel is None or not self.server_side.token_matches(morsel.value):
            body = json.dumps({"error": NO_ACCESS}).encode()
            self.send_response(HTTPStatus.FORBIDDEN)
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _host_is_loopback(self) -> bool:
        host = self.headers.get("Host", "")
        name = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
        # Any loopback address literal (a lab with --bind 127.0.0.2); names other than localhost are
        # what DNS rebinding uses.
        try:
            return name in LOOPBACK_NAMES or ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def end_headers(self):
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()

    def log_message(self, format, *args):  # the lab's status line owns the terminal
        pass


class DashboardServer:
    """The dashboard on http://HOST:PORT/ (a loopback address), served from a background thread.

    ``token`` guards the page's settings and history; ``url`` holds it.
    """

    def __init__(self, page_config: dict, token: str, port: int = 0, host: str = "127.0.0.1", history=None):
        if not token:
            raise ValueError("the dashboard needs an access token")
        self.page_config = json.dumps(page_config).encode()
        self.token = token
        self.history = history
        self.httpd = ThreadingHTTPServer((host, port), partial(_Handler, server_side=self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        # Per port: cookies are shared by every port of a host, and two labs may run side by side.
        self.cookie_name = f"luxnode-lab-{self.port}"
        self.base_url = f"http://{host}:{self.port}/"
        self.url = f"{self.base_url}?token={token}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="luxnode-dashboard", daemon=True)

    def token_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def start(self) -> "DashboardServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
