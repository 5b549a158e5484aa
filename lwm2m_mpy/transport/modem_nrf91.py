"""Nordic nRF91 Serial LTE Modem UDP over AT#X* (docs/modem.md dialect table, column nrf91)."""
from binascii import hexlify

from .modem import Modem


class Driver(Modem):
    APN = 'AT+CGDCONT=0,"IP","%s"'
    AGAIN = False  # #XRECVFROM waits when nothing is there: read once per #XAPOLL

    def urcs(self):
        self.at.urc("#XAPOLL:", self._poll)  # network lost: +CEREG: 2 (Modem)

    def _poll(self, line):  # #XAPOLL: <handle>,<events>: 1 (POLLIN)
        if int(line[8:].split(b",")[-1]) & 1:
            self.data = True

    def connect(self):
        self.at.cmd("AT#XSOCKET=1,2,0", 5000)  # IPv4, datagram -> #XSOCKET: 0,2,17
        self.at.cmd("AT#XAPOLL=1,1,0")  # a URC when the socket has data

    def put(self, buf, n):
        c = b'AT#XSENDTO="%s",%d,0,"' % (self.host.encode(), self.port)  # datatype 0: hex
        self.at.cmd(c + hexlify(memoryview(buf)[:n]) + b'"', 10000)

    def get(self):
        out = []

        def on(line):  # #XRECVFROM: n,"ip",port then CR LF and the n bytes
            n = int(line[12:].split(b",")[0])
            if n:
                out.append(self.at.binary(n))

        self.at.cmd("AT#XRECVFROM=0", 5000, on=on)
        return out[0] if out else None

    def disconnect(self):
        self.at.cmd("AT#XSOCKET=0", 5000)
