"""Exceptions that carry a CoAP response code (RFC 7252 §5.9); turned into a response in core/dm.py only."""


class CoapError(Exception):
    """A request failed; `code` is the CoAP code as an int (class << 5 | detail, 4.04 = 132)."""

    def __init__(self, code, msg=""):
        super().__init__(msg)
        self.code = code


class BadMessage(CoapError):
    """The datagram is not valid CoAP (RFC 7252 §3, §4.2): answered with RST or 4.00. Raised as
    BadMessage(128, reason): no __init__ of its own, as every function costs heap on a board."""



