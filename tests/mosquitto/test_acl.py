"""acl_file: mosquitto's syntax and rule semantics."""

import pytest

from luxnode.mosquitto import acl

LAB_ACL = """\
# anonymous clients: before the first user line
topic read public/#
topic deny public/secret

user operator
topic read luxnode/#
topic write luxnode/+/set
topic read $SYS/#

user readwriter
topic luxnode/shared
topic readwrite rw/#
topic deny rw/locked/#

pattern write luxnode/%u/#
pattern read luxnode/%u/set
pattern read luxnode/%u/sim/#
pattern write homeassistant/+/%u/#
pattern readwrite clients/%c/#
pattern deny luxnode/%u/forbidden
"""


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "acl"
    path.write_text(LAB_ACL)
    return acl.read_file(path)


@pytest.mark.parametrize("username, client_id, topic, access, allowed", [
    # anonymous rules apply only to clients without a username
    (None, "c", "public/news", "read", True),
    (None, "c", "public/news", "write", False),
    (None, "c", "public/secret", "read", False),          # deny wins over the broader read
    ("operator", "c", "public/news", "read", False),      # anonymous rules are not for users
    # user rules
    ("operator", "op", "luxnode/node-1/light", "read", True),
    ("operator", "op", "luxnode/node-1/light", "write", False),
    ("operator", "op", "luxnode/node-1/set", "write", True),
    ("operator", "op", "$SYS/broker/uptime", "read", True),
    ("readwriter", "c", "luxnode/shared", "write", True),  # no access word = readwrite
    ("readwriter", "c", "luxnode/shared", "read", True),
    ("readwriter", "c", "rw/locked/x", "write", False),
    # patterns: %u and %c
    ("node-1", "luxnode-node-1", "luxnode/node-1/light", "write", True),
    ("node-1", "luxnode-node-1", "luxnode/node-2/light", "write", False),
    ("node-1", "luxnode-node-1", "luxnode/node-1/set", "read", True),
    ("node-1", "luxnode-node-1", "luxnode/node-1/light", "read", False),
    ("node-1", "luxnode-node-1", "luxnode/node-1/sim/ambient", "read", True),
    ("node-1", "luxnode-node-1", "homeassistant/sensor/node-1/light/config", "write", True),
    ("node-1", "luxnode-node-1", "clients/luxnode-node-1/x", "read", True),
    ("node-1", "luxnode-node-1", "luxnode/node-1/forbidden", "write", False),   # pattern deny
    (None, "anon", "clients/anon/x", "write", True),       # %c works without a username
    (None, "anon", "luxnode/None/x", "write", False),      # %u rules skip anonymous clients
    # an unknown user gets patterns only
    ("stranger", "s", "luxnode/stranger/light", "write", True),
    ("stranger", "s", "public/news", "read", False),
])
def test_rule_semantics(rules, username, client_id, topic, access, allowed):
    assert rules.allowed(username, client_id, topic, access) is allowed


def test_dollar_topics_need_rules_of_their_own(tmp_path):
    rules = acl.parse("user admin\ntopic readwrite #\ntopic read +/broker/#\n")
    assert rules.allowed("admin", "c", "anything/at/all", "write")
    assert not rules.allowed("admin", "c", "$SYS/broker/uptime", "read")
    assert not rules.allowed("admin", "c", "$SYS/#", "subscribe")
    rules = acl.parse("user admin\ntopic read $SYS/#\n")
    assert rules.allowed("admin", "c", "$SYS/broker/uptime", "read")


def test_deny_overrides_grants_in_any_order_and_list():
    rules = acl.parse("user u\ntopic readwrite a/#\ntopic deny a/b\npattern deny a/%u/x\n")
    assert rules.allowed("u", "c", "a/c", "write")
    assert not rules.allowed("u", "c", "a/b", "write")
    assert not rules.allowed("u", "c", "a/u/x", "read")   # a pattern deny beats a user grant


def test_dangerous_names_get_nothing_from_patterns():
    rules = acl.parse("pattern readwrite luxnode/%u/#\npattern readwrite c/%c/#\n")
    assert rules.allowed("node", "id", "luxnode/node/x", "write")
    assert not rules.allowed("+", "id", "luxnode/x/y", "write")
    assert not rules.allowed("node", "#", "c/#/x", "write")


@pytest.mark.parametrize("username, sub, allowed", [
    ("operator", "luxnode/#", True),
    ("operator", "luxnode/+/light", True),
    ("operator", "#", True),             # overlaps luxnode/#: granted, delivery filters per message
    ("operator", "other/#", False),      # no read rule can match any topic of it
    ("operator", "$SYS/#", True),
    ("operator", "$SYS/broker/+", True),
    ("node-1", "luxnode/node-1/set", True),
    ("node-1", "luxnode/node-2/set", False),
    ("node-1", "luxnode/+/set", True),   # overlaps its own set topic
    ("node-1", "luxnode/node-1/forbidden", False),
    ("readwriter", "rw/locked/#", False),   # a deny rule covers the whole filter
    ("readwriter", "rw/#", True),           # deny covers only part of it
    (None, "public/secret", False),
    (None, "public/+", True),
])
def test_subscribe_checks_the_filter(rules, username, sub, allowed):
    assert rules.allowed(username, "luxnode-" + str(username), sub, "subscribe") is allowed


@pytest.mark.parametrize("a, b, overlap", [
    ("a/b", "a/b", True), ("a/+", "a/b", True), ("a/#", "a", True), ("a/#", "a/b/c", True),
    ("a/+", "a/b/c", False), ("a/b", "a/c", False), ("+/+", "a/#", True), ("#", "$SYS/x", False),
    ("$SYS/#", "$SYS/broker", True), ("a", "a/b", False), ("+", "a/b", False),
])
def test_filters_overlap(a, b, overlap):
    assert acl.filters_overlap(a, b) is overlap
    assert acl.filters_overlap(b, a) is overlap


@pytest.mark.parametrize("rule, sub, covers", [
    ("a/#", "a/b", True), ("a/#", "a", True), ("a/#", "a/+/c", True), ("a/+", "a/#", False),
    ("a/+", "a/+", True), ("a/b", "a/+", False), ("#", "$SYS/#", False), ("$SYS/#", "$SYS/+", True),
    ("+/b", "+/b", True), ("+/b", "a/b/c", False),
])
def test_filter_covers(rule, sub, covers):
    assert acl.filter_covers(rule, sub) is covers


@pytest.mark.parametrize("sub, topic, match", [
    ("a/+/c", "a/b/c", True), ("a/#", "a", True), ("#", "$SYS/x", False), ("+/x", "$SYS/x", False),
    ("$SYS/#", "$SYS/x", True), ("a/+", "a/b/c", False), ("a//b", "a//b", True), ("+", "", True),
])
def test_topic_matches(sub, topic, match):
    assert acl.topic_matches(sub, topic) is match


@pytest.mark.parametrize("line, problem", [
    ("topic sometimes a/b", "invalid access 'sometimes'"),
    ("topic", "'topic' needs a topic"),
    ("pattern read", "'pattern read' has no topic after the access word"),
    ("user", "'user' needs a username"),
    ("usr bob", "unknown keyword 'usr'"),
    ("topic read a/#/b", "invalid topic 'a/#/b'"),
    ("topic read a/b+", "'+' must be a whole level"),
])
def test_malformed_lines_name_file_line_and_problem(tmp_path, line, problem):
    path = tmp_path / "acl"
    path.write_text(f"# acl\ntopic read ok/#\n{line}\n")
    with pytest.raises(acl.AclError) as err:
        acl.read_file(path)
    assert str(err.value).startswith(f"{path}:3: ") and problem in str(err.value)


def test_topics_may_contain_spaces_and_tabs_separate_words():
    rules = acl.parse("user bob\ntopic read my topic/with spaces\ntopic\twrite\tx/y\n")
    assert rules.allowed("bob", "c", "my topic/with spaces", "read")
    assert rules.allowed("bob", "c", "x/y", "write")
