"""``luxnode lab``: broker, simulated nodes, dashboard and time server in one command, until Ctrl-C."""

import os
import shlex
import threading

from luxnode.errors import LuxnodeError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "lab", help="run the lab: broker, simulated nodes and the dashboard",
        description="Start the lab broker (TLS-PSK, password and WebSocket listeners), provision and start "
                    "N simulated nodes, serve the live dashboard and the time (SNTP, for nodes in certificate "
                    "mode). Boards provisioned against the same broker appear beside the simulated nodes. "
                    "Ctrl-C stops everything.",
    )
    parser.add_argument("--nodes", type=int, default=3, metavar="N", help="simulated nodes (default 3)")
    parser.add_argument("--port", type=int, metavar="P",
                        help="MQTT port with username/password (default: the registry's, 1883)")
    parser.add_argument("--psk-port", type=int, metavar="P", help="MQTT over TLS-PSK port (default 8883)")
    parser.add_argument("--ws-port", type=int, metavar="P", help="MQTT over WebSocket port (default 9001)")
    parser.add_argument("--http-port", type=int, default=8080, metavar="H",
                        help="dashboard port on 127.0.0.1 (default 8080)")
    parser.add_argument("--bind", metavar="ADDRESS",
                        help="listen on this IPv4 address only, as mosquitto's 'listener PORT ADDRESS': "
                             "127.0.0.1 keeps the lab on this machine (real boards cannot reach it), a LAN "
                             "address on that network; 'all' for every interface (default: the address the "
                             "lab last ran with, at first all). The dashboard stays on loopback")
    parser.add_argument("--ntp-port", type=int, metavar="U",
                        help="UDP port of the lab's SNTP time server, for nodes with --tls cert "
                             "(default: the registry's, 1123)")
    parser.add_argument("--no-browser", action="store_true", help="do not open the dashboard in a browser")
    parser.set_defaults(func=run)


def _ntp_port(args) -> int:
    from luxnode.device import registry
    from luxnode.lab.sntp import DEFAULT_PORT

    port = registry.load()["broker"].get("ntp_port", DEFAULT_PORT) if args.ntp_port is None else args.ntp_port
    if not 0 < port < 65536:
        raise LuxnodeError(f"--ntp-port {port}: expected a UDP port, 1..65535 (boards are provisioned with it)")
    return port


def _ports(args):
    from luxnode.device import registry
    from luxnode.lab.brokerconf import LabPorts

    known = registry.load()["broker"]  # the defaults where no lab was set up yet
    pick = lambda given, default: default if given is None else given   # noqa: E731 - 0 is refused below
    ports = LabPorts(
        psk=pick(args.psk_port, known["psk_port"]),
        password=pick(args.port, known["password_port"]),
        ws=pick(args.ws_port, known["ws_port"]),
    )
    for name, port in (("--port", ports.password), ("--psk-port", ports.psk), ("--ws-port", ports.ws),
                       ("--http-port", args.http_port)):
        if not 0 < port < 65536:
            raise LuxnodeError(f"{name} {port}: expected a TCP port, 1..65535 (the lab's ports are fixed: "
                               "nodes and boards are provisioned with them)")
    if len({ports.password, ports.psk, ports.ws, args.http_port}) != 4:
        raise LuxnodeError("the four ports (--port, --psk-port, --ws-port, --http-port) must differ")
    return ports


def _bind(args):
    from luxnode.device import registry
    from luxnode.lab.bind import ALL, LabAddress

    given = args.bind is not None
    bind = LabAddress.parse(args.bind if given else str(registry.load()["broker"].get("bind", ALL)))
    bind.check_local(remembered=not given)
    return bind


def _board_line(lab, tool: str) -> str:
    if lab.bind.is_loopback:
        return (f"  a board      cannot reach this lab on {lab.bind.address}: start it with --bind all "
                "(or --bind LAN-ADDRESS) for boards")
    broker = "LAN-ADDRESS" if lab.bind.is_all or lab.bind.is_every_ipv4 else lab.bind.address
    return f"  a board      {tool} provision --port PORT --device-id ID --wifi-ssid SSID --broker {broker}"


def _banner(lab) -> str:
    from luxnode.lab.bind import LOOPBACK

    ids = ", ".join(lab.device_ids) or "none"
    # The tools find a lab by its home: a second lab's commands must name it too.
    home = os.environ.get("LUXNODE_HOME")
    tool = f"LUXNODE_HOME={shlex.quote(home)} luxnode" if home else "luxnode"
    where = lab.bind.describe()
    ha_host = "this machine" if lab.bind.connect_host == LOOPBACK else lab.bind.connect_host
    return "\n".join([
        f"luxnode lab: broker pid {lab.broker.pid}, {len(lab.device_ids)} simulated node(s): {ids}",
        f"  dashboard    {lab.dashboard.url}  (the token is your key to the page)",
        f"  MQTT         port {lab.ports.psk} TLS-PSK (nodes), port {lab.ports.password} username/password; "
        f"{where}",
        f"  WebSocket    ws://{lab.bind.web_host}:{lab.ports.ws}/mqtt",
        f"  time         SNTP on UDP port {lab.ntp_port}, {where} (the clock for nodes with --tls cert)",
        f"  credentials  {lab.credentials_file} (operator account and node keys, mode 0600)",
        f"  Home Assistant  MQTT integration: {ha_host}, port {lab.ports.password}, username homeassistant,",
        f"               password: {tool} accounts homeassistant --show-secrets",
        f"  logs         {lab.broker_log}, {lab.folder / 'sim'}/<id>/node.log",
        f"  try          {tool} watch    {tool} set sim-1 50    {tool} set sim-1 auto 60",
        _board_line(lab, tool),
        "Ctrl-C stops the nodes, then the broker.",
    ])


def run(args) -> int:
    from luxnode.lab.running import LabLock
    from luxnode.lab.session import Lab
    from luxnode.sim import scratch

    if not 0 <= args.nodes <= 64:
        raise LuxnodeError(f"--nodes {args.nodes}: expected 0..64")
    ports = _ports(args)
    ntp_port = _ntp_port(args)
    bind = _bind(args)
    if args.nodes:
        from luxnode.sim.node import micropython

        micropython()   # before anything is provisioned or started: without it no node can run
    lock = LabLock()
    lock.acquire(ports, args.http_port, bind)   # before anything is provisioned: one lab per home
    try:
        scratch.remove_orphans()
        return _run_lab(Lab(args.nodes, ports, args.http_port, ntp_port, bind), args)
    finally:
        lock.release()


def _run_lab(lab, args) -> int:
    import signal
    import webbrowser

    from luxnode.lab.status import StatusLine

    stop = threading.Event()
    # Ctrl-C, SIGTERM from a service manager or a test, and SIGHUP from a closed terminal end
    # the wait below. Set explicitly: a shell starts background jobs with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: stop.set())
    lab.start()  # on failure it has already stopped what it started
    status = None
    healthy = True
    try:
        print(_banner(lab), flush=True)
        if not args.no_browser:
            webbrowser.open(lab.dashboard.url)
        status = StatusLine(lab)
        healthy = status.run_until(stop)
    finally:
        if status:
            status.close()
        print("luxnode lab: stopping the nodes, then the broker ...", flush=True)
        lab.stop()
        print("luxnode lab: stopped", flush=True)
    return 0 if healthy else 1
