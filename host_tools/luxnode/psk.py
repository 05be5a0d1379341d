"""TLS-PSK contexts for the host tools: the stdlib on Python >= 3.13, the same API before it.

``PskContext`` is ``ssl.SSLContext`` on Python 3.13 and later; on 3.11 and 3.12
it is ``luxnode.psk_openssl.PskContext``, which adds the two 3.13 methods with
ctypes (no compiler, no extra package).
"""

import ssl
import sys

if sys.version_info >= (3, 13):
    PskContext = ssl.SSLContext
else:
    from luxnode.psk_openssl import PskContext


def client_context(identity: str, key: bytes) -> ssl.SSLContext:
    """A context that offers only PSK suites, as mosquitto and the lab broker accept them."""
    ctx = PskContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("PSK")
    ctx.set_psk_client_callback(lambda hint: (identity, key))
    return ctx
