"""One run of the lab: broker, time server, simulated nodes and dashboard, started and stopped in order.

Start: serve time (SNTP, for nodes in certificate mode), provision the simulated
nodes (registry, auth files, each node's folder), write broker.conf, start the
broker and wait for its listeners, start the nodes, serve the dashboard. Stop: the
nodes first (the broker publishes their wills), then the dashboard, then the broker,
so no node publishes into the void; the time server last.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from luxnode import home as lab_home
from luxnode.errors import LuxnodeError
from luxnode.lab import brokerconf
from luxnode.lab.bind import LabAddress
from luxnode.lab.brokerconf import LabPorts
from luxnode.lab.sntp import DEFAULT_PORT as DEFAULT_NTP_PORT

BROKER_START_TIMEOUT_S = 20.0
BROKER_STOP_TIMEOUT_S = 10.0
SIM_DIR = "sim"
BROKER_LOG = "broker.log"
NODE_LOG = "node.log"
_PR_SET_PDEATHSIG = 1


def _broker_dies_with_lab():
    # Runs in the broker's child process before exec: a lab killed outright takes its broker along.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _port_open(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Lab:
    def __init__(self, node_count: int, ports: LabPorts, http_port: int, ntp_port: int = DEFAULT_NTP_PORT,
                 bind: LabAddress = LabAddress(None)):
        self.node_count = node_count
        self.ports = ports
        self.http_port = http_port
        self.ntp_port = ntp_port
        self.bind = bind
        self.time_server = None
        self.folder = lab_home.home()
        self.registry = None
        self.device_ids: list[str] = []
        self.broker = None
        self.nodes = []
        self.dashboard = None
        self.history = None

    @property
    def credentials_file(self) -> Path:
        return self.folder / lab_home.REGISTRY

    @property
    def broker_log(self) -> Path:
        return self.folder / BROKER_LOG

    def node_folder(self, device_id: str) -> Path:
        return self.folder / SIM_DIR / device_id

    # -- start ------------------------------------------------------------------------

    def start(self) -> "Lab":
        try:
            self._check_ports_free()
            self._start_time_server()
            self._provision()
            self._start_broker()
            self._start_nodes()
            self._start_dashboard()
        except BaseException:
            self.stop()
            raise
        return self

    def _check_ports_free(self) -> None:
        host, web_host = self.bind.connect_host, self.bind.web_host
        for name, where, port in (("TLS-PSK", host, self.ports.psk), ("password", host, self.ports.password),
                                  ("WebSocket", web_host, self.ports.ws), ("dashboard", web_host, self.http_port)):
            if port and _port_open(where, port):
                raise LuxnodeError(
                    f"port {port} ({name}) is already in use (another lab or broker?); "
                    "stop it or choose other ports with --port/--psk-port/--ws-port/--http-port"
                )

    def _start_time_server(self) -> None:
        from luxnode.lab.sntp import SntpServer

        self.time_server = SntpServer(self.ntp_port, self.bind.address).start()

    def _provision(self) -> None:
        """Each simulated node gets a folder, as a board gets flash, and is provisioned like a board."""
        import json
        from types import SimpleNamespace

        from luxnode import boards
        from luxnode.device import authfiles, provision, registry
        from luxnode.lab import accounts

        with registry.locked():
            self.registry = registry.load()
            accounts.ensure(self.registry)
            # The tools on this machine (watch, set, devices, the status line) find the broker at host.
            self.registry["broker"].update(psk_port=self.ports.psk, password_port=self.ports.password,
                                           ws_port=self.ports.ws, ntp_port=self.ntp_port,
                                           bind=self.bind.setting, host=self.bind.connect_host)
            registry.save(self.registry)
            authfiles.write(self.registry)  # the broker needs them even when no node is provisioned
        self.device_ids = [f"sim-{i}" for i in range(1, self.node_count + 1)]
        for device_id in self.device_ids:
            folder = self.node_folder(device_id)
            folder.mkdir(parents=True, exist_ok=True)
            # What 'luxnode deploy' puts on a board; the firmware itself runs from the checkout.
            (folder / "board.json").write_text(json.dumps(boards.load("sim"), indent=2) + "\n")
            request = SimpleNamespace(
                device_id=device_id, board="sim", tls="psk", ca=None,
                broker=f"{self.bind.connect_host}:{self.ports.psk}", wifi_ssid="luxnode-sim", wifi_password="",
                port=None, force=False,
            )
            provision.provision(request, provision.FolderTarget(folder))
        self.registry = registry.load()

    def _start_broker(self) -> None:
        conf = brokerconf.write(self.folder, self.ports, self.bind)
        log = open(self.broker_log, "ab")
        try:
            # Its own session: a Ctrl-C in the terminal reaches the lab, which stops the
            # nodes before the broker.
            self.broker = subprocess.Popen(
                self.broker_argv(conf),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_broker_dies_with_lab,
            )
        finally:
            log.close()
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        wanted = ((self.bind.connect_host, self.ports.psk), (self.bind.connect_host, self.ports.password),
                  (self.bind.web_host, self.ports.ws))
        while not all(_port_open(host, port) for host, port in wanted):
            if self.broker.poll() is not None:
                raise LuxnodeError(
                    f"the broker exited with status {self.broker.returncode}: {self._broker_log_tail()}; "
                    f"full log in {self.broker_log}"
                )
            if time.monotonic() > deadline:
                raise LuxnodeError(
                    f"the broker did not open ports {[port for _, port in wanted]} "
                    f"within {BROKER_START_TIMEOUT_S:.0f} s; "
                    f"see {self.broker_log}"
                )
            time.sleep(0.05)

    @staticmethod
    def broker_argv(conf: Path) -> list[str]:
        return [sys.executable, "-m", "luxnode", "broker", "-c", str(conf)]

    def _broker_log_tail(self) -> str:
        try:
            lines = self.broker_log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no log"

    def _start_nodes(self) -> None:
        from luxnode.sim.node import start_nodes

        self.nodes = start_nodes([self.node_folder(d) for d in self.device_ids], log_name=NODE_LOG)

    def _start_dashboard(self) -> None:
        from luxnode.lab.accounts import DASHBOARD
        from luxnode.lab.recent import HistoryListener, RecentHistory
        from luxnode.lab.web import DashboardServer
        from luxnode.operator.connect import BrokerSettings

        account = self.registry["accounts"][DASHBOARD]
        prefix = self.registry["broker"]["prefix"]
        history = RecentHistory(prefix)
        self.history = HistoryListener(BrokerSettings(
            host=self.bind.connect_host, port=self.ports.password, prefix=prefix,
            username=account["username"], password=account["password"]), history)
        try:
            self.dashboard = DashboardServer({
                "ws_port": self.ports.ws,
                "ws_path": "/mqtt",
                "prefix": prefix,
                "username": account["username"],
                "password": account["password"],
            }, token=account["page_token"], port=self.http_port, host=self.bind.web_host, history=history).start()
        except OSError as exc:
            raise LuxnodeError(f"cannot serve the dashboard on port {self.http_port} ({exc.strerror or exc}); "
                               "choose another with --http-port") from None

    # -- stop -------------------------------------------------------------------------

    def stop(self) -> None:
        """Nodes, then dashboard, then broker, then time server; safe to call at any stage, and twice."""
        from luxnode.sim.node import stop_nodes

        nodes, self.nodes = self.nodes, []
        stop_nodes(nodes)
        if self.dashboard:
            self.dashboard.stop()
            self.dashboard = None
        if self.history:
            self.history.stop()
            self.history = None
        if self.broker:
            self._stop_broker()
        if self.time_server:
            self.time_server.stop()
            self.time_server = None

    def _stop_broker(self) -> None:
        broker, self.broker = self.broker, None
        if broker.poll() is None:
            broker.send_signal(signal.SIGTERM)
            try:
                broker.wait(BROKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(broker.pid, signal.SIGKILL)
                broker.wait(BROKER_STOP_TIMEOUT_S)
