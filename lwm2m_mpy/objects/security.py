"""Object 0 LwM2M Security (Core §E.1): where the server account lives; never listed in Register."""
from ..tables.o0 import T


def add(client, uri, ssid=1):
    # Security mode 3 = NoSec until DTLS arrives; keys stay empty.
    client.add(T, 0, {0: uri, 1: False, 2: 3, 3: b"", 4: b"", 5: b"", 10: ssid})
