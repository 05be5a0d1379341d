"""The accounts of the tools that connect to the lab broker, each with its own ACL.

The operator (``luxnode watch``/``set``, mosquitto_sub) lives in the registry's
``operator`` section; Home Assistant and the dashboard get accounts of their own
under ``accounts``, created by ``luxnode lab`` and kept across runs so a Home
Assistant set up once keeps working. Their ACL sections are in
luxnode.device.authfiles.
"""

import json
import secrets

HOMEASSISTANT = "homeassistant"
DASHBOARD = "dashboard"
NAMES = (HOMEASSISTANT, DASHBOARD)


def ensure(registry: dict) -> bool:
    """Give ``registry`` the tool accounts it lacks; True if it changed (then save it)."""
    accounts = registry.setdefault("accounts", {})
    before = json.dumps(accounts, sort_keys=True)
    for name in NAMES:
        accounts.setdefault(name, {"username": name, "password": secrets.token_urlsafe(18)})
    # The dashboard page's access token (luxnode.lab.web): kept, so an open page survives a lab restart.
    accounts[DASHBOARD].setdefault("page_token", secrets.token_urlsafe(24))
    return json.dumps(accounts, sort_keys=True) != before


def all_accounts(registry: dict) -> dict[str, dict]:
    """Every tool account the registry holds, the operator first."""
    return {"operator": registry["operator"], **registry.get("accounts", {})}
