"""``luxnode broker [-c FILE] [-p PORT] [-v]``: run the lab broker in the foreground."""

import sys


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "broker", help="run the lab MQTT broker (mosquitto.conf subset)",
        description="MQTT 3.1.1/3.1 broker. With no config file it listens on localhost:1883, "
                    "anonymous, in memory. SIGHUP reloads password, ACL and PSK files.")
    parser.add_argument("-c", "--config-file", metavar="FILE", help="mosquitto.conf syntax")
    parser.add_argument("-p", "--port", type=int, metavar="PORT",
                        help="port of the default listener (overrides the config file's)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log everything (log_type all)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import asyncio
    import signal

    from luxnode.errors import LuxnodeError
    from luxnode.mosquitto import conf

    from .log import Log
    from .server import Server

    config = conf.load(args.config_file) if args.config_file else conf.default()
    for warning in config.warnings:
        print(f"luxnode broker: warning: {warning}", file=sys.stderr)
    if args.port is not None:
        if not 0 < args.port < 65536:
            raise LuxnodeError(f"port {args.port} is out of range; use 1-65535")
        if config.listeners:
            config.listeners[0].port = args.port
        else:
            config.listeners.append(conf.default().listeners[0])
            config.listeners[0].port = args.port
    if not config.listeners:
        raise LuxnodeError(f"{args.config_file} defines no listener; add 'listener 1883'")
    log = Log({"all"} if args.verbose else config.log_types)
    account = _account(config.user)

    async def main() -> None:
        server = Server(config, log=log)
        await server.start()
        if account is not None:
            _switch_to(account, log)
        loop = asyncio.get_running_loop()
        stopping = []

        def stop() -> None:
            if not stopping:
                stopping.append(loop.create_task(server.stop()))

        loop.add_signal_handler(signal.SIGHUP, server.reload)
        loop.add_signal_handler(signal.SIGTERM, stop)
        loop.add_signal_handler(signal.SIGINT, stop)
        await server.wait_stopped()

    asyncio.run(main())
    return 0


def _account(user: str | None):
    """The account to switch to after the listeners are open: `user`, when started as root
    (as mosquitto; unlike mosquitto, no `user` line means no switch)."""
    import os
    import pwd

    from luxnode.errors import LuxnodeError

    if not user or os.geteuid() != 0 or user == "root":
        return None
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise LuxnodeError(f"user {user}: no such account; create it or change the config's 'user' line") from None


def _switch_to(account, log) -> None:
    import os

    os.setgroups([])
    os.initgroups(account.pw_name, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    log("notice", f"Running as user {account.pw_name}; SIGHUP reloads the auth files as that user.")
