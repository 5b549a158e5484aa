"""lwm2m_mpy: an OMA LwM2M 1.1 client for MicroPython, CircuitPython and CPython.

`from lwm2m_mpy import Client` loads the client; importing only a codec (e.g. lwm2m_mpy.coap.message)
loads just that, so small tools and tests do not pay for the whole client.
"""
from . import _compat  # noqa: F401  (on plain CPython this installs the `micropython.const` shim)

__version__ = "0.1.0"


def __getattr__(name):
    if name == "Client":
        from .core.client import Client

        return Client
    raise AttributeError(name)
