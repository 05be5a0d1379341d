"""Certificate listeners: cafile/certfile/keyfile, require_certificate, use_identity_as_username,
tls_version; clients are mosquitto_pub with certificates from a CA made here."""

import datetime
import ipaddress
import socket
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from luxnode.broker.auth import Auth
from luxnode.broker.tls import server_context
from luxnode.errors import LuxnodeError
from luxnode.mosquitto import passwd
from luxnode.mosquitto.conf import ListenerConfig

ACL = """\
user operator
topic read luxnode/#
pattern write luxnode/%u/#
"""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_cert(folder, name, common_name, issuer=None, ca=False, server=False):
    """Write NAME.pem and NAME.key; returns (cert, key) for signing others."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_cert, issuer_key = issuer or (None, key)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name))
               .issuer_name(issuer_cert.subject if issuer_cert else _name(common_name))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, key


@pytest.fixture
def pki(tmp_path):
    ca = make_cert(tmp_path, "ca", "luxnode test CA", ca=True)
    make_cert(tmp_path, "server", "localhost", issuer=ca, server=True)
    make_cert(tmp_path, "node-7", "node-7", issuer=ca)
    rogue_ca = make_cert(tmp_path, "rogue-ca", "rogue CA", ca=True)
    make_cert(tmp_path, "rogue", "node-7", issuer=rogue_ca)
    (tmp_path / "acl").write_text(ACL)
    return tmp_path


def cert_listener(pki, **options) -> ListenerConfig:
    settings = dict(cafile=pki / "ca.pem", certfile=pki / "server.pem", keyfile=pki / "server.key",
                    acl_file=pki / "acl")
    return ListenerConfig(0, "127.0.0.1", **{**settings, **options})


def start(start_broker, clients, pki, listener):
    broker = start_broker(listeners=[
        ListenerConfig(0, "127.0.0.1", allow_anonymous=True, acl_file=pki / "acl"), listener])
    operator = clients(broker.ports[0], client_id="operator", username="operator").connect()
    operator.subscribe("luxnode/#", 1)
    return broker, operator


def mosquitto_pub(port, pki, cert=None, topic="luxnode/node-7/light", *extra, message="on"):
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "--cafile", str(pki / "ca.pem"),
            "-i", "cert-client", "-t", topic, "-m", message, "-q", "1", *extra]
    if cert:
        args += ["--cert", str(pki / f"{cert}.pem"), "--key", str(pki / f"{cert}.key")]
    return subprocess.run(args, capture_output=True, text=True, timeout=20)


def test_client_certificate_common_name_is_the_username(pki, start_broker, clients):
    listener = cert_listener(pki, require_certificate=True, use_identity_as_username=True)
    broker, operator = start(start_broker, clients, pki, listener)
    port = broker.ports[1]
    result = mosquitto_pub(port, pki, "node-7")
    assert result.returncode == 0, result.stderr
    # the CN, not the MQTT username, meets the ACL: node-7 cannot write as node-8
    assert mosquitto_pub(port, pki, "node-7", "luxnode/node-8/light", "-u", "node-8").returncode == 0
    assert mosquitto_pub(port, pki, "node-7", "luxnode/node-7/light", message="again").returncode == 0
    assert [(m.topic, m.payload) for m in operator.received(2)] == [
        ("luxnode/node-7/light", b"on"), ("luxnode/node-7/light", b"again")]


@pytest.mark.parametrize("cert", [None, "rogue"])
def test_require_certificate_refuses_missing_or_foreign_certificates(pki, start_broker, clients, cert):
    listener = cert_listener(pki, require_certificate=True, use_identity_as_username=True)
    broker, operator = start(start_broker, clients, pki, listener)
    result = mosquitto_pub(broker.ports[1], pki, cert)
    assert result.returncode != 0
    assert mosquitto_pub(broker.ports[1], pki, "node-7").returncode == 0
    assert len(operator.received(1)) == 1


def test_certificate_plus_password(pki, start_broker, clients):
    (pki / "passwd").write_text(f"node-7:{passwd.hash_password('pw')}\n")
    listener = cert_listener(pki, require_certificate=True, password_file=pki / "passwd")
    broker, operator = start(start_broker, clients, pki, listener)
    port = broker.ports[1]
    assert mosquitto_pub(port, pki, "node-7", "luxnode/node-7/light", "-u", "node-7", "-P", "pw").returncode == 0
    refused = mosquitto_pub(port, pki, "node-7", "luxnode/node-7/light", "-u", "node-7", "-P", "nope")
    assert refused.returncode != 0 and "not authori" in refused.stderr.lower()
    assert mosquitto_pub(port, pki, "node-7").returncode != 0          # no username, not anonymous
    assert len(operator.received(1)) == 1


def test_identity_as_username_without_require_certificate_is_bad_credentials(pki, start_broker, clients):
    """As mosquitto: without require_certificate no client certificate is asked for (CONNACK 4)."""
    listener = cert_listener(pki, use_identity_as_username=True)
    broker, _ = start(start_broker, clients, pki, listener)
    result = mosquitto_pub(broker.ports[1], pki, "node-7")
    assert result.returncode != 0 and "bad user name or password" in result.stderr.lower(), result.stderr


def tls_version_agreed(port, pki, highest: ssl.TLSVersion) -> str:
    context = ssl.create_default_context(cafile=pki / "ca.pem")
    context.load_cert_chain(pki / "node-7.pem", pki / "node-7.key")
    context.maximum_version = highest
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.version()


def test_tls_version_sets_the_minimum(pki, start_broker, clients):
    default = start(start_broker, clients, pki, cert_listener(pki, require_certificate=True))[0]
    assert tls_version_agreed(default.ports[1], pki, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    strict = start(start_broker, clients, pki, cert_listener(pki, require_certificate=True, tls_version="tlsv1.3"))[0]
    with pytest.raises(ssl.SSLError):
        tls_version_agreed(strict.ports[1], pki, ssl.TLSVersion.TLSv1_2)
    assert tls_version_agreed(strict.ports[1], pki, ssl.TLSVersion.MAXIMUM_SUPPORTED) == "TLSv1.3"


def test_unreadable_certificates_are_a_clear_error(pki):
    listener = cert_listener(pki, keyfile=pki / "node-7.key")   # a key that is not the server's
    with pytest.raises(LuxnodeError, match=r"cannot load certfile .*server.pem with keyfile .*node-7.key"):
        server_context(listener, Auth(listener))
