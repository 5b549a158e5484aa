# Written by tools/pkgjson.py -- do not edit. Freezes lwm2m_mpy into a MicroPython firmware (its bytecode
# then stays in flash, not in the heap), e.g.
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/lwm2m_mpy/manifest.py
# The unix-port command line and the CircuitPython/CPython shims are left out, as in package.json.
metadata(description="OMA LwM2M 1.1 client", version="0.1.0")
include("$(PORT_DIR)/boards/manifest.py")
package("lwm2m_mpy", files=[
    "__init__.py",
    "_compat.py",
    "aio.py",
    "coap/exchange.py",
    "coap/message.py",
    "codec/cbor.py",
    "codec/link.py",
    "codec/reader.py",
    "codec/senml.py",
    "codec/text.py",
    "codec/tlv.py",
    "core/access.py",
    "core/attributes.py",
    "core/bootstrap.py",
    "core/changes.py",
    "core/client.py",
    "core/composite.py",
    "core/dm.py",
    "core/observe.py",
    "core/persist.py",
    "core/registration.py",
    "core/servers.py",
    "core/store.py",
    "errors.py",
    "objects/core.py",
    "tables/o0.py",
    "tables/o1.py",
    "tables/o2.py",
    "tables/o3.py",
    "transport/dtls.py",
    "transport/udp.py",
], opt=3)
