"""luxnode.psk: Python 3.13's PSK callbacks (or the same API on 3.11/3.12), client against server in memory."""

import ssl

import pytest

from luxnode.psk import PskContext, client_context

KEY = bytes(range(32))


def server_context(keys: dict, hint="luxnode"):
    ctx = PskContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("PSK")
    ctx.set_psk_server_callback(lambda identity: keys.get(identity, b""), hint)
    return ctx


def handshake(client_ctx, server_ctx):
    """Both ends of one handshake over memory BIOs; returns (client, server) SSLObjects."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {client: False, server: False}
    for _ in range(20):
        for end in (client, server):
            if not done[end]:
                try:
                    end.do_handshake()
                    done[end] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return client, server
    raise AssertionError("the handshake did not finish")


def test_a_psk_handshake_on_tls_1_2_with_a_psk_suite():
    client, server = handshake(client_context("node-1", KEY), server_context({"node-1": KEY}))
    assert "PSK" in client.cipher()[0] and server.version() == "TLSv1.2"


@pytest.mark.parametrize("identity, key", [("node-1", b"\xff" + KEY[1:]), ("stranger", KEY)])
def test_wrong_key_or_unknown_identity_is_refused(identity, key):
    with pytest.raises(ssl.SSLError):
        handshake(client_context(identity, key), server_context({"node-1": KEY}))


def test_the_server_callback_hears_the_identity_and_the_client_the_hint():
    heard = {}

    def server_lookup(identity):
        heard["identity"] = identity
        return KEY

    def client_credentials(hint):
        heard["hint"] = hint
        return "node-7", KEY

    server_ctx = server_context({}, hint="lab-hint")
    server_ctx.set_psk_server_callback(server_lookup, "lab-hint")
    client_ctx = client_context("unused", KEY)
    client_ctx.set_psk_client_callback(client_credentials)
    handshake(client_ctx, server_ctx)
    assert heard == {"hint": "lab-hint", "identity": "node-7"}


def test_a_failing_callback_refuses_the_client_instead_of_crashing():
    server_ctx = server_context({})
    server_ctx.set_psk_server_callback(lambda identity: 1 / 0, "h")
    with pytest.raises(ssl.SSLError):
        handshake(client_context("node-1", KEY), server_ctx)
