"""lwm2m_mpy: an OMA LwM2M 1.1 client for MicroPython, CircuitPython and CPython."""
from . import _compat  # noqa: F401  (installs the `micropython.const` shim on plain CPython)
from .core.client import Client  # noqa: F401

__version__ = "0.1.0"
