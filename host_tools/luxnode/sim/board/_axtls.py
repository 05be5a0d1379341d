# The `tls` module of the ESP8266 build (axTLS, extmod/modtls_axtls.c), as the
# simulated ESP8266 has it: SSLContext with load_cert_chain and wrap_socket only,
# verify_mode fixed at CERT_NONE, no CERT_REQUIRED, no load_verify_locations, no
# PSK. machine.py puts it in place of the unix port's mbedTLS `tls` on an ESP8266
# (when machine is imported on a board whose board.json says ESP8266).
PROTOCOL_TLS_CLIENT = 0
PROTOCOL_TLS_SERVER = 1
CERT_NONE = 0


def _cert_none(self, value=None):
    return CERT_NONE


class SSLContext:
    # The C type's attr handler: verify_mode reads CERT_NONE and storing it is ignored; there is
    # no psk_identity or psk_key (reading one, or hasattr(), fails; so does storing one). As
    # properties, not __setattr__: the ESP8266 build has none (MICROPY_PY_DELATTR_SETATTR 0).
    # Unlike the C type, other names can still be stored.
    verify_mode = property(_cert_none, _cert_none)
    psk_identity = property()
    psk_key = property()

    def __init__(self, protocol):
        pass

    def load_cert_chain(self, cert, key):
        pass

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        # A real axTLS handshake is not modelled; the firmware never gets this far.
        raise OSError("axTLS handshake not simulated")
