"""Payload codecs (LwM2M 1.1 Core §7.4): plain text, TLV, CoRE link format."""
