"""``luxnode accounts``: the broker accounts of the tools, their rights, and their passwords when asked."""

from luxnode.errors import LuxnodeError

USES = {
    "operator": ("luxnode watch/set, mosquitto_sub", "reads {p}/# and $SYS/#; writes commands"),
    "homeassistant": ("Home Assistant's MQTT integration",
                      "reads homeassistant/# and the nodes' state, light, status; writes commands and "
                      "homeassistant/status"),
    "dashboard": ("the lab's dashboard page", "reads the nodes' status, state, light, error, telemetry; "
                                              "writes commands"),
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "accounts", help="the broker accounts of the operator, Home Assistant and the dashboard",
        description="List the lab broker's tool accounts and what each may read and write (creating the "
                    "homeassistant and dashboard accounts if the lab has not yet). Passwords are printed "
                    "only with --show-secrets.",
    )
    parser.add_argument("name", nargs="?", help="only this account (e.g. homeassistant)")
    parser.add_argument("--show-secrets", action="store_true", help="print the passwords too")
    parser.set_defaults(func=run)


def _load() -> tuple[dict, str | None]:
    """The registry, with the tool accounts created (and the broker told) where they were missing."""
    from luxnode.device import authfiles, registry
    from luxnode.lab import accounts

    with registry.locked():
        data = registry.load()
        if not accounts.ensure(data):
            return data, None
        registry.save(data)
        authfiles.write(data)
    return data, authfiles.reload_broker()


def run(args) -> int:
    from luxnode.lab.accounts import all_accounts

    data, reloaded = _load()
    found = all_accounts(data)
    if args.name is not None and args.name not in found:
        raise LuxnodeError(f"no account {args.name!r}; the accounts are {', '.join(found)}")
    names = [args.name] if args.name else list(found)
    broker = data["broker"]
    if reloaded:
        print(f"created the homeassistant and dashboard accounts; {reloaded}")
    for name in names:
        account = found[name]
        used_by, rights = USES.get(name, ("", ""))
        print(f"{account['username']:<14} {used_by}: {rights.format(p=broker['prefix'])}")
        if args.show_secrets:
            print(f"{'':<14} password {account['password']}")
    print(f"broker: port {broker['password_port']} (username/password; this machine's address, or its LAN "
          "address from another machine)")
    if not args.show_secrets:
        print("passwords: hidden; add --show-secrets to print them")
    return 0
