"""TLS-PSK client contexts for the host tools: the stdlib on Python >= 3.13, sslpsk3 before."""

import ssl
import sys


def client_context(identity: str, key: bytes) -> ssl.SSLContext:
    """A context that offers only PSK suites, as mosquitto and the lab broker accept them."""
    if sys.version_info >= (3, 13):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        import sslpsk3

        ctx = sslpsk3.SSLPSKContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("PSK")
    ctx.set_psk_client_callback(lambda hint: (identity, key))
    return ctx
