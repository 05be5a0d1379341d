"""mosquitto.conf: the subset the lab broker reads, with mosquitto 2's semantics."""

from pathlib import Path

import pytest

from luxnode.mosquitto import conf


def load(tmp_path, text: str) -> conf.BrokerConfig:
    path = tmp_path / "broker.conf"
    path.write_text(text)
    return conf.load(path)


def test_no_file_is_localhost_1883_anonymous_in_memory():
    config = conf.default()
    [listener] = config.listeners
    assert (listener.port, listener.address, listener.allow_anonymous) == (1883, "127.0.0.1", True)
    assert not config.persistence and listener.password_file is None


def test_no_listener_lines_keep_local_only_mode(tmp_path):
    config = load(tmp_path, "persistence true\n")
    [listener] = config.listeners
    assert (listener.port, listener.address, listener.allow_anonymous) == (1883, "127.0.0.1", True)


def test_listeners_make_anonymous_default_to_false(tmp_path):
    config = load(tmp_path, "listener 1883\nlistener 9001 127.0.0.1\nprotocol websockets\n")
    assert [(l.port, l.address, l.protocol, l.allow_anonymous) for l in config.listeners] == [
        (1883, None, "mqtt", False), (9001, "127.0.0.1", "websockets", False)]


def test_global_security_applies_to_every_listener_wherever_it_appears(tmp_path):
    config = load(tmp_path, (
        "listener 1883\n"
        "password_file passwd\n"
        "listener 8883\n"
        "psk_hint luxnode\n"
        "use_identity_as_username true\n"
        "allow_anonymous true\n"
        "psk_file /etc/psk\n"
        "acl_file sub/acl\n"
    ))
    plain, psk = config.listeners
    for listener in (plain, psk):
        assert listener.password_file == tmp_path / "passwd"      # relative to the config's folder
        assert listener.acl_file == tmp_path / "sub" / "acl"
        assert listener.psk_file == Path("/etc/psk")
        assert listener.allow_anonymous is True
    assert (plain.psk_hint, psk.psk_hint) == (None, "luxnode")    # TLS settings stay per listener
    assert (plain.use_identity_as_username, psk.use_identity_as_username) == (False, True)


def test_per_listener_settings(tmp_path):
    config = load(tmp_path, (
        "listener 1883 127.0.0.1\n"
        "allow_anonymous true\n"
        "listener 1884\n"
        "password_file passwd\n"
        "acl_file acl\n"
        "per_listener_settings true\n"          # read first, wherever it is
    ))
    open_one, locked = config.listeners
    assert config.per_listener_settings
    assert (open_one.allow_anonymous, open_one.password_file) == (True, None)
    assert (locked.allow_anonymous, locked.password_file, locked.acl_file) == (
        False, tmp_path / "passwd", tmp_path / "acl")


def test_every_global_option(tmp_path):
    config = load(tmp_path, (
        "listener 1883\n"
        "persistence true\npersistence_location data/\npersistence_file lab.db\nautosave_interval 60\n"
        "max_keepalive 120\nmax_queued_messages 50\nmessage_size_limit 4096\nclientid_prefixes luxnode-\n"
        "log_type error\nlog_type subscribe\nconnection_messages false\npid_file run/broker.pid\n"
        "sys_interval 0\n"
    ))
    assert config.persistence and config.persistence_location == tmp_path / "data"
    assert (config.persistence_file, config.autosave_interval, config.max_keepalive) == ("lab.db", 60, 120)
    assert (config.max_queued_messages, config.message_size_limit) == (50, 4096)
    assert config.clientid_prefixes == "luxnode-"
    assert config.log_types == {"error", "subscribe"}
    assert config.connection_messages is False
    assert config.pid_file == tmp_path / "run" / "broker.pid"
    assert config.sys_interval == 0
    assert config.warnings == []


def test_tabs_separate_names_from_values(tmp_path):
    [listener] = load(tmp_path, "listener\t8883\t127.0.0.1\npsk_hint\tlab hint\n").listeners
    assert (listener.port, listener.address, listener.psk_hint) == (8883, "127.0.0.1", "lab hint")


def test_log_type_all_and_none(tmp_path):
    assert load(tmp_path, "log_type all\n").log_types == conf.LOG_TYPES
    assert load(tmp_path, "log_type all\nlog_type none\n").log_types == set()


def test_tls_listener_options(tmp_path):
    config = load(tmp_path, (
        "listener 8884\ncafile ca.pem\ncertfile server.pem\nkeyfile server.key\n"
        "require_certificate true\nuse_identity_as_username true\ntls_version tlsv1.3\n"
    ))
    [listener] = config.listeners
    assert (listener.cafile, listener.certfile, listener.keyfile) == (
        tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key")
    assert listener.require_certificate and listener.use_identity_as_username
    assert listener.tls_version == "tlsv1.3"


def test_unknown_and_unsupported_directives_are_warnings_naming_the_line(tmp_path):
    config = load(tmp_path, "listener 1883\n# comment\n\nfrobnicate 1\nlog_dest stdout\ninclude_dir conf.d\n")
    path = tmp_path / "broker.conf"
    assert config.warnings == [
        f"{path}:4: unknown directive 'frobnicate', ignored",
        f"{path}:5: mosquitto directive 'log_dest' is not supported by the lab broker, ignored",
        f"{path}:6: include_dir is not supported, ignored (put the settings in this file)",
    ]
    assert len(config.listeners) == 1


@pytest.mark.parametrize("text, line, reason", [
    ("listener 70000\n", 1, "invalid listener port value 70000 (allowed: 1..65535)"),
    ("listener 0\n", 1, "Unix socket) is not supported"),
    ("listener abc\n", 1, "invalid listener port value 'abc'"),
    ("listener 1883 a b\n", 1, "takes a port and an optional address"),
    ("listener 1883\nlistener 1883\n", 2, "listener 1883 is already defined at line 1"),
    ("allow_anonymous yes\n", 1, "invalid allow_anonymous value 'yes' (expected true or false)"),
    ("max_keepalive 5\n", 1, "invalid max_keepalive value 5 (allowed: 10..65535)"),
    ("message_size_limit 300000000\n", 1, "allowed: 0..268435455"),
    ("max_queued_messages -1\n", 1, "invalid max_queued_messages value -1"),
    ("sys_interval soon\n", 1, "expected a whole number"),
    ("autosave_interval 1 2\n", 1, "'autosave_interval' takes one value, got 2"),
    ("password_file\n", 1, "'password_file' needs a value"),
    ("password_file a\npassword_file b\n", 2, "duplicate password_file value"),
    ("listener 1883\nprotocol mqtts\n", 2, "invalid protocol 'mqtts'"),
    ("listener 8883\ntls_version tlsv1.0\n", 2, "invalid tls_version 'tlsv1.0'"),
    ("log_type chatter\n", 1, "invalid log_type 'chatter'"),
    ("persistence_file /var/x.db\n", 1, "persistence_file is a file name"),
    ("listener 8883\ncertfile s.pem\n", 1, "certfile and keyfile must be given together"),
    ("listener 8883\ncertfile s.pem\nkeyfile s.key\nrequire_certificate true\n", 1,
     "require_certificate needs cafile"),
    ("listener 8883\nrequire_certificate true\ncafile ca.pem\n", 1, "require_certificate needs certfile"),
    ("listener 8883\npsk_hint x\ncertfile s.pem\nkeyfile s.key\n", 1, "psk_hint together with certfile"),
    ("listener 9001\nprotocol websockets\npsk_hint x\n", 1, "psk_hint is not supported on a websockets"),
    ("listener 8883\npsk_hint x\ntls_version tlsv1.3\n", 1, "TLS-PSK here uses TLS 1.2"),
])
def test_invalid_values_stop_with_file_line_and_reason(tmp_path, text, line, reason):
    with pytest.raises(conf.ConfigError) as err:
        load(tmp_path, text)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'broker.conf'}:{line}: "), message
    assert reason in message, message


def test_advisory_warnings(tmp_path):
    config = load(tmp_path, "listener 1883\ncafile ca.pem\nlistener 8883\npsk_hint lab\n")
    path = tmp_path / "broker.conf"
    assert config.warnings == [
        f"{path}:1: listener 1883: cafile has no effect without psk_hint or certfile/keyfile",
        f"{path}:3: listener 8883: psk_hint without psk_file: no client can complete the handshake",
    ]


def test_missing_config_file(tmp_path):
    with pytest.raises(conf.ConfigError, match="cannot read config file"):
        conf.load(tmp_path / "nope.conf")


def test_the_lab_config_that_mosquitto_also_runs(tmp_path, mosquitto):
    """The same lines start real mosquitto (checks the subset is mosquitto syntax)."""
    (tmp_path / "passwd").write_text("")
    (tmp_path / "acl").write_text("topic read #\n")
    (tmp_path / "psk").write_text("node-1:00112233445566778899aabbccddeeff\n")
    lines = (
        f"password_file {tmp_path / 'passwd'}\nacl_file {tmp_path / 'acl'}\npsk_file {tmp_path / 'psk'}\n"
        "allow_anonymous false\nmax_keepalive 300\nmax_queued_messages 100\nmessage_size_limit 65536\n"
        "connection_messages true\nsys_interval 10\nautosave_interval 60\n"
    )
    broker = mosquitto(lines)
    assert "Error" not in broker.log_text()
    config = load(tmp_path, f"listener {broker.port} 127.0.0.1\n" + lines)
    assert config.warnings == [] and config.listeners[0].acl_file == tmp_path / "acl"
