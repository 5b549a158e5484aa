"""CoAP (RFC 7252): message codec and the sans-IO message layer."""
