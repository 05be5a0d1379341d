"""mosquitto.conf: the subset the lab broker reads, with mosquitto 2's semantics."""

import re
import subprocess
from fnmatch import fnmatch
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


def test_harmless_directives_are_warnings_naming_the_line_and_why(tmp_path):
    config = load(tmp_path, "listener 1883\n# comment\n\nlog_dest stdout\nhttp_dir /srv\n")
    path = tmp_path / "broker.conf"
    assert config.warnings == [
        f"{path}:4: mosquitto directive 'log_dest' is not supported by the lab broker, ignored "
        "(the log goes to standard error)",
        f"{path}:5: mosquitto directive 'http_dir' is not supported by the lab broker, ignored "
        "(no HTTP files are served)",
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
    # An unknown directive stops startup, as in mosquitto: a misspelt limit must not pass unseen.
    ("listener 1883\nmax_conections 10\n", 2, "unknown directive 'max_conections'"),
    # Restricting directives the lab broker does not implement stop it rather than leave it open.
    ("listener 1883\nmemory_limit 1000000\n", 2, "memory_limit is not implemented"),
    ("listener 1883\nmount_point lab/\n", 2, "mount_point is not supported"),
    ("include_dir conf.d\n", 1, "cannot read include_dir"),
    ("include_dir .\n", 1, "holds the main config file"),
    ("per_listener_settings true\nacl_file acl\nlistener 1883\nallow_anonymous true\n", 2,
     "'acl_file' before the first listener applies to no listener with per_listener_settings true"),
    ("auth_plugin /usr/lib/x.so\n", 1, "auth plugins are not supported"),
    ("listener 8883\nciphers PSK-AES128-CBC-SHA\n", 2, "cipher lists are not supported"),
    ("listener 8883\ncrlfile crl.pem\n", 2, "certificate revocation lists"),
    ("listener 8883\nuse_subject_as_username true\n", 2, "use_subject_as_username is not supported"),
    ("check_retain_source true\n", 1, "only 'check_retain_source false' is supported"),
    ("persistent_client_expiration 14\n", 1, "invalid persistent_client_expiration duration '14'"),
    ("persistent_client_expiration 0d\n", 1, "invalid persistent_client_expiration duration '0d'"),
    ("persistent_client_expiration 2d\npersistent_client_expiration 3d\n", 2, "duplicate"),
    ("connection uplink\naddress 10.0.0.1\n", 1, "bridges are not supported"),
    # Limits the broker enforces are checked like every value.
    ("listener 1883\nmax_connections -2\n", 2, "invalid max_connections value -2 (allowed: -1 or more)"),
    ("listener 1883\nmax_qos 3\n", 2, "invalid max_qos value 3 (allowed: 0..2)"),
    ("listener 1883\nsocket_domain ipv5\n", 2, "invalid socket_domain 'ipv5'"),
    ("max_packet_size 10\n", 1, "invalid max_packet_size value 10 (0, or 20 or more)"),
    ("max_inflight_messages -1\n", 1, "invalid max_inflight_messages value -1"),
    ("max_queued_bytes lots\n", 1, "expected a whole number"),
    ("allow_zero_length_clientid maybe\n", 1, "invalid allow_zero_length_clientid value 'maybe'"),
    # A listener option before the first listener would apply to no listener at all.
    ("max_connections 5\nlistener 1883\n", 1, "'max_connections' before the first listener applies to no"),
    ("bind_interface lo\nlistener 1883\n", 1, "'bind_interface' before the first listener"),
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


def test_include_dir_reads_its_conf_files_in_mosquittos_order(tmp_path):
    folder = tmp_path / "conf.d"
    folder.mkdir()
    for name, port in (("b.conf", 6), ("A.conf", 3), ("01.conf", 2), ("a.conf", 4), ("B.conf", 5),
                       ("00.conf", 1), ("notes.txt", 9)):
        (folder / name).write_text(f"listener {1880 + port}\n")
    config = load(tmp_path, "allow_anonymous true\ninclude_dir conf.d\nlistener 1890\n")
    assert [listener.port for listener in config.listeners] == [1881, 1882, 1883, 1884, 1885, 1886, 1890]
    assert all(listener.allow_anonymous for listener in config.listeners)


def test_errors_in_an_included_file_name_that_file(tmp_path):
    folder = tmp_path / "conf.d"
    folder.mkdir()
    (folder / "limits.conf").write_text("listener 1883\n\nmemory_limit 5\n")
    with pytest.raises(conf.ConfigError) as refused:
        load(tmp_path, "include_dir conf.d\n")
    assert str(refused.value).startswith(f"{folder / 'limits.conf'}:3: memory_limit is not implemented")
    (folder / "limits.conf").write_text("include_dir /etc\n")
    with pytest.raises(conf.ConfigError, match="limits.conf:1: include_dir is only read from the main"):
        load(tmp_path, "include_dir conf.d\n")
    (folder / "limits.conf").write_text("listener 1883\ncertfile s.pem\n")
    with pytest.raises(conf.ConfigError, match="limits.conf:1: listener 1883: certfile and keyfile"):
        load(tmp_path, "include_dir conf.d\n")


def test_resource_and_access_limits_are_read(tmp_path):
    config = load(tmp_path, (
        "max_inflight_messages 5\nmax_inflight_bytes 1000\nmax_queued_messages 7\nmax_queued_bytes 4096\n"
        "max_packet_size 2048\nretain_available false\nset_tcp_nodelay true\nuser nobody\n"
        "check_retain_source false\nallow_zero_length_clientid false\nauto_id_prefix lab-\n"
        "persistent_client_expiration 2w\n"
        "listener 1883\nbind_interface lo\nmax_connections 3\nmax_qos 1\nsocket_domain ipv4\n"
        "use_username_as_clientid true\n"
        "listener 1884\n"
    ))
    assert (config.max_inflight_messages, config.max_inflight_bytes, config.max_queued_messages,
            config.max_queued_bytes, config.max_packet_size) == (5, 1000, 7, 4096, 2048)
    assert (config.retain_available, config.set_tcp_nodelay, config.user) == (False, True, "nobody")
    assert config.persistent_client_expiration == 14 * 86400
    first, second = config.listeners
    assert (first.bind_interface, first.max_connections, first.max_qos, first.socket_domain,
            first.use_username_as_clientid) == ("lo", 3, 1, "ipv4", True)
    assert (second.bind_interface, second.max_connections, second.max_qos, second.socket_domain,
            second.use_username_as_clientid) == (None, -1, 2, None, False)
    for listener in (first, second):  # global with per_listener_settings false
        assert (listener.allow_zero_length_clientid, listener.auto_id_prefix) == (False, "lab-")
    assert config.warnings == []


def test_zero_length_clientid_settings_per_listener(tmp_path):
    config = load(tmp_path, (
        "per_listener_settings true\nlistener 1883\nallow_anonymous true\nallow_zero_length_clientid false\n"
        "listener 1884\nallow_anonymous true\nauto_id_prefix x-\n"
    ))
    first, second = config.listeners
    assert (first.allow_zero_length_clientid, first.auto_id_prefix) == (False, "auto-")
    assert (second.allow_zero_length_clientid, second.auto_id_prefix) == (True, "x-")


# Every directive mosquitto.conf(5) of mosquitto 2.0.11 describes.
MOSQUITTO_2_0_11 = {
    "acl_file", "address", "allow_anonymous", "allow_duplicate_messages", "allow_zero_length_clientid",
    "auth_opt_*", "auth_plugin", "auth_plugin_deny_special_chars", "auto_id_prefix", "autosave_interval",
    "autosave_on_changes", "bind_address", "bind_interface", "bridge_alpn", "bridge_attempt_unsubscribe",
    "bridge_bind_address", "bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_identity",
    "bridge_insecure", "bridge_keyfile", "bridge_max_packet_size", "bridge_outgoing_retain",
    "bridge_protocol_version", "bridge_psk", "bridge_require_ocsp", "bridge_tls_version", "cafile", "capath",
    "certfile", "check_retain_source", "ciphers", "ciphers_tls1.3", "cleansession", "clientid_prefixes",
    "connection", "connection_messages", "crlfile", "dhparamfile", "http_dir", "idle_timeout", "include_dir",
    "keepalive_interval", "keyfile", "listener", "local_cleansession", "local_clientid", "local_password",
    "local_username", "log_dest", "log_facility", "log_timestamp", "log_timestamp_format", "log_type",
    "max_connections", "max_inflight_bytes", "max_inflight_messages", "max_keepalive", "max_packet_size",
    "max_qos", "max_queued_bytes", "max_queued_messages", "max_topic_alias", "memory_limit",
    "message_size_limit", "mount_point", "notification_topic", "notifications", "notifications_local_only",
    "password_file", "per_listener_settings", "persistence", "persistence_file", "persistence_location",
    "persistent_client_expiration", "pid_file", "port", "protocol", "psk_file", "psk_hint",
    "queue_qos0_messages", "remote_clientid", "remote_password", "remote_username", "require_certificate",
    "restart_timeout", "retain_available", "round_robin", "set_tcp_nodelay", "socket_domain", "start_type",
    "sys_interval", "threshold", "tls_engine", "tls_engine_kpass_sha1", "tls_keyform", "tls_version", "topic",
    "try_private", "upgrade_outgoing_qos", "use_identity_as_username", "use_subject_as_username",
    "use_username_as_clientid", "user", "websockets_headers_size", "websockets_log_level",
}


def test_the_directive_list_is_the_man_page():
    """Where the man page is installed, the list above is what it describes."""
    import gzip
    import re
    page = Path("/usr/share/man/man5/mosquitto.conf.5.gz")
    if not page.exists():
        pytest.skip("mosquitto's man page is not installed here (Debian images may exclude man pages)")
    text = gzip.decompress(page.read_bytes()).decode("utf-8", "replace")
    if "2.0.11" not in subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout:
        pytest.skip("the list is for mosquitto 2.0.11")
    names = set(re.findall(r"^\\fB([a-z_0-9.]+)\\fR", text, re.M))
    names -= {"mosquitto", "mosquitto_passwd", "limits.conf", "file", "stdout", "stderr", "syslog", "dlt",
              "none", "value", "mqtt", "websockets", "ipv4", "ipv6"}
    assert names <= MOSQUITTO_2_0_11
    assert {"auth_opt_*", "ciphers_tls1.3"} <= MOSQUITTO_2_0_11


def test_every_directive_of_mosquitto_2_0_11_is_classified():
    """Implemented, refused at startup, or harmless: no mosquitto directive falls through."""
    known = conf.IMPLEMENTED | set(conf.SECURITY) | set(conf.LISTENER_OPTIONS) | set(conf.REFUSED) \
        | conf.BRIDGE | set(conf.HARMLESS) | {"check_retain_source"}
    assert sorted(MOSQUITTO_2_0_11 - known) == []
    classes = [conf.IMPLEMENTED | set(conf.SECURITY) | set(conf.LISTENER_OPTIONS), set(conf.REFUSED) | conf.BRIDGE,
               set(conf.HARMLESS)]
    for one in range(3):  # and each in one class only
        for other in range(one + 1, 3):
            assert classes[one] & classes[other] == set()


def test_the_contracts_directive_table_matches_the_classes():
    """docs/SPEC.md's table names each directive in the class conf.py gives it, and no other."""
    spec = (Path(__file__).resolve().parents[2] / "docs" / "SPEC.md").read_text()
    rows: dict[str, list[str]] = {"implemented": [], "refused": [], "harmless, warned": []}
    for line in spec.split("### mosquitto.conf directives", 1)[1].splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 3 and cells[1] in rows:
            rows[cells[1]] += [name.split()[0] for name in re.findall(r"`([^`]+)`", cells[2])]
    classes = {"implemented": conf.IMPLEMENTED | set(conf.SECURITY) | set(conf.LISTENER_OPTIONS),
               "refused": set(conf.REFUSED) | conf.BRIDGE, "harmless, warned": set(conf.HARMLESS)}
    for kind, names in classes.items():
        patterns = set(rows[kind]) - {"check_retain_source"}  # implemented when false, refused when true
        unnamed = [name for name in names - {"check_retain_source"} if not any(fnmatch(name, p) for p in patterns)]
        assert sorted(unnamed) == [], f"{kind}: in conf.py, not in SPEC's table"
        misplaced = [p for p in patterns if not any(fnmatch(name, p) for name in names)]
        assert sorted(misplaced) == [], f"{kind}: in SPEC's table, not in that class in conf.py"


@pytest.mark.parametrize("name", sorted(set(conf.REFUSED) - {"check_retain_source"}))
def test_each_refused_directive_stops_startup(tmp_path, name):
    with pytest.raises(conf.ConfigError, match="broker.conf:2: "):
        load(tmp_path, f"listener 1883\n{name} x\n")
