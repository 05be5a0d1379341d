# The `tls` module of the ESP8266 build (axTLS, extmod/modtls_axtls.c), as the
# simulated ESP8266 has it: SSLContext with load_cert_chain and wrap_socket only,
# verify_mode fixed at CERT_NONE, no CERT_REQUIRED, no load_verify_locations, no
# PSK. machine.py puts it in place of the unix port's mbedTLS `tls` on an ESP8266
# (when machine is imported on a board whose board.json says ESP8266).
PROTOCOL_TLS_CLIENT = 0
PROTOCOL_TLS_SERVER = 1
CERT_NONE = 0


class SSLContext:
    verify_mode = CERT_NONE  # the only value; storing another is ignored

    def __init__(self, protocol):
        pass

    def __setattr__(self, name, value):
        if name != "verify_mode":  # nothing else can be stored (no psk_identity, psk_key)
            raise AttributeError(name)

    def load_cert_chain(self, cert, key):
        pass

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        # A real axTLS handshake is not modelled; the firmware never gets this far.
        raise OSError("axTLS handshake not simulated")
