"""Object 1 LwM2M Server (Core §E.2): lifetime and binding the registration reports; update trigger."""
from ..tables.o1 import T


def add(client, lifetime=300, binding="U", ssid=1):
    client.add(T, 0, {0: ssid, 1: lifetime, 6: True, 7: binding})
    client.on_execute("/1/0/8", lambda args: client.update())  # Registration Update Trigger
