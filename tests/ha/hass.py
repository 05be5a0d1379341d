"""A real Home Assistant core as a test's MQTT client: installed, started, onboarded, driven by REST.

Home Assistant needs Python >= 3.13 and hundreds of packages, so it lives in a venv
of its own, named by $LUXNODE_HA_PYTHON (.ci/run makes one with
``bash tests/ha/install-ha.sh``). Without it the tests skip and say so.
"""

import json
import os
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.net import free_port, wait_for

PYTHON_ENV = "LUXNODE_HA_PYTHON"
VERSION = "2025.4.4"
START_TIMEOUT_S = 180  # the first start sets up its database and loads the frontend's files
CLIENT_ID = "http://127.0.0.1/"


def python() -> str | None:
    """The Home Assistant venv's python, or None where there is none."""
    path = os.environ.get(PYTHON_ENV)
    return path if path and Path(path).is_file() else None


def missing_reason() -> str:
    path = os.environ.get(PYTHON_ENV)
    if not path:
        return (f"no Home Assistant core: set {PYTHON_ENV} to the python of a Python 3.13 venv with "
                f"homeassistant=={VERSION} (bash tests/ha/install-ha.sh DIR makes DIR/venv)")
    return f"{PYTHON_ENV}={path} is not a file"


class HomeAssistant:
    """``hass -c DIR --skip-pip`` on an ephemeral port on 127.0.0.1, and its REST API."""

    def __init__(self, folder: Path, python_path: str):
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = None
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "configuration.yaml").write_text(
            "homeassistant:\n"
            "  name: luxnode test\n  latitude: 52.37\n  longitude: 4.89\n  elevation: 0\n"
            "  unit_system: metric\n  time_zone: UTC\n  country: NL\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {self.port}\n"
            "api:\nconfig:\nonboarding:\nfrontend:\nlogger:\n  default: warning\n"
        )
        self.log = open(folder / "hass.out", "wb")
        hass = Path(python_path).with_name("hass")
        self.proc = subprocess.Popen([str(hass), "-c", str(folder), "--skip-pip"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, lines: int = 30) -> str:
        path = self.folder / "home-assistant.log"
        text = path.read_text(errors="replace") if path.exists() else (self.folder / "hass.out").read_text()
        return "\n".join(text.splitlines()[-lines:])

    def request(self, method: str, path: str, body=None, form: dict | None = None, auth: bool = True):
        headers = {}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def wait_started(self) -> None:
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"hass exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                return self.request("GET", "/api/onboarding", auth=False) is not None
            except (OSError, ValueError):
                return False
        wait_for(up, START_TIMEOUT_S, interval=0.5, what="Home Assistant's HTTP API")

    def onboard(self) -> None:
        """The owner account and an access token, as the onboarding page makes them."""
        created = self.request("POST", "/api/onboarding/users", {
            "client_id": CLIENT_ID, "name": "Owner", "username": "owner", "password": "owner-pass-1234",
            "language": "en"}, auth=False)
        tokens = self.request("POST", "/auth/token", form={
            "grant_type": "authorization_code", "code": created["auth_code"], "client_id": CLIENT_ID}, auth=False)
        self.token = tokens["access_token"]

    def add_mqtt(self, port: int, username: str, password: str) -> dict:
        """Settings → Devices & services → MQTT, as a user fills it in."""
        flow = self.request("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        if flow.get("type") == "menu":  # newer releases ask first how to find the broker
            flow = self.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                                {"next_step_id": "broker"})
        return self.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}", {
            "broker": "127.0.0.1", "port": port, "username": username, "password": password})

    def states(self) -> dict[str, dict]:
        return {state["entity_id"]: state for state in self.request("GET", "/api/states")}

    def call(self, domain: str, service: str, **data):
        return self.request("POST", f"/api/services/{domain}/{service}", data)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()
