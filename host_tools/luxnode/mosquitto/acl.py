"""mosquitto's acl_file and the access checks it defines.

Syntax (mosquitto.conf(5), acl_file):

    # comment
    topic [read|write|readwrite|deny] <topic>     rules before the first ``user``
    user <username>                               line apply to anonymous clients
    topic [read|write|readwrite|deny] <topic>     ...then to that user
    pattern [read|write|readwrite|deny] <topic>   every client; %c = client id, %u = username

Semantics follow mosquitto 2: with an acl_file, everything not granted is
denied; a rule that does not start with ``$`` never matches a ``$`` topic, so
``$SYS`` needs its own rule; clients whose username or client id contains
``+`` or ``#`` get nothing from patterns. Two points are stricter than
mosquitto: a ``deny`` anywhere (user rules or patterns) wins over every grant,
and SUBSCRIBE is checked (mosquitto 2 grants every filter and filters only on
delivery): a filter is refused when it cannot deliver anything, that is when no
read rule can match any topic it matches, or a deny rule covers all of it.
Delivery is still checked per message ("read"), PUBLISH per topic ("write").
"""

from dataclasses import dataclass, field
from pathlib import Path

from luxnode.mosquitto import lines
from luxnode.mosquitto.errors import AclError
from luxnode.mqtt.topics import filter_error
from luxnode.mqtt.topics import matches as topic_matches  # a leading wildcard never matches '$'

__all__ = ["AclError", "Rule", "Acl", "parse", "read_file", "topic_matches", "filters_overlap", "filter_covers"]

READ, WRITE = 1, 2
ACCESS_WORDS = {"read": READ, "write": WRITE, "readwrite": READ | WRITE, "deny": 0}
CHECKS = {"read": READ, "write": WRITE, "subscribe": READ}


@dataclass(frozen=True)
class Rule:
    topic: str
    access: int          # READ | WRITE bits; 0 = deny
    line: int = 0

    @property
    def deny(self) -> bool:
        return self.access == 0


@dataclass
class Acl:
    anonymous: list[Rule] = field(default_factory=list)
    users: dict[str, list[Rule]] = field(default_factory=dict)
    patterns: list[Rule] = field(default_factory=list)

    def allowed(self, username: str | None, client_id: str, topic: str, access: str) -> bool:
        """May this client ``access`` ("read", "write" or "subscribe") ``topic``?"""
        wanted = CHECKS[access]
        rules = list(self.anonymous if username is None else self.users.get(username, ()))
        if self.patterns and not _dangerous(username) and not _dangerous(client_id):
            for rule in self.patterns:
                if "%u" in rule.topic and username is None:
                    continue
                topic_text = rule.topic.replace("%c", client_id)
                if username is not None:
                    topic_text = topic_text.replace("%u", username)
                rules.append(Rule(topic_text, rule.access, rule.line))
        if access == "subscribe":
            if any(rule.deny and filter_covers(rule.topic, topic) for rule in rules):
                return False
            return any(rule.access & wanted and filters_overlap(rule.topic, topic) for rule in rules)
        matching = [rule for rule in rules if topic_matches(rule.topic, topic)]
        if any(rule.deny for rule in matching):
            return False
        return any(rule.access & wanted for rule in matching)


def parse(text: str, path: str | Path = "<acl_file>") -> Acl:
    acl = Acl()
    current = acl.anonymous
    for lineno, line in lines.content(text):
        keyword, rest = (line.split(None, 1) + [""])[:2]
        if keyword == "user":
            if not rest:
                raise AclError(path, lineno, "'user' needs a username")
            current = acl.users.setdefault(rest, [])
        elif keyword in ("topic", "pattern"):
            rule = _rule(rest, lineno, keyword, path)
            (acl.patterns if keyword == "pattern" else current).append(rule)
        else:
            raise AclError(path, lineno, f"unknown keyword '{keyword}' (expected topic, pattern or user)")
    return acl


def read_file(path: str | Path) -> Acl:
    return parse(lines.read_text(path, AclError, "acl file"), path)


def _rule(rest: str, lineno: int, keyword: str, path) -> Rule:
    if not rest:
        raise AclError(path, lineno, f"'{keyword}' needs a topic")
    words = rest.split(None, 1)
    if len(words) == 1 and words[0] in ACCESS_WORDS:
        raise AclError(path, lineno, f"'{keyword} {words[0]}' has no topic after the access word")
    if len(words) == 1:
        access, topic = READ | WRITE, words[0]     # mosquitto: no access word means readwrite
    elif words[0] in ACCESS_WORDS:
        access, topic = ACCESS_WORDS[words[0]], words[1].strip()
    else:
        raise AclError(path, lineno, f"invalid access '{words[0]}' (expected read, write, readwrite or deny)")
    problem = filter_error(topic)
    if problem:
        raise AclError(path, lineno, f"invalid topic '{topic}': {problem}")
    return Rule(topic, access, lineno)


def _dangerous(name: str | None) -> bool:
    return name is not None and ("+" in name or "#" in name)


def filters_overlap(a: str, b: str) -> bool:
    """Is there a topic that both filters match?"""
    if a.startswith("$") != b.startswith("$"):
        return False  # a '$' topic is matched only by filters that spell out its first level
    la, lb = a.split("/"), b.split("/")
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else None
        y = lb[i] if i < len(lb) else None
        if x == "#" or y == "#":
            return True
        if x is None or y is None:
            return False
        if x != "+" and y != "+" and x != y:
            return False
    return True


def filter_covers(rule: str, sub: str) -> bool:
    """Does ``rule`` match every topic that the filter ``sub`` matches?"""
    if rule.startswith("$") != sub.startswith("$"):
        return False
    lr, ls = rule.split("/"), sub.split("/")
    for i, level in enumerate(lr):
        if level == "#":
            return True
        if i >= len(ls):
            return False
        if level == "+":
            if ls[i] == "#":
                return False
        elif level != ls[i]:
            return False
    return len(lr) == len(ls)
