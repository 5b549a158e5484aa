"""u-blox SARA-R4 / R5 UDP over AT+USO* in hex mode (docs/modem.md dialect table, column sara-r5)."""
from binascii import hexlify, unhexlify

from .modem import Modem


class Driver(Modem):
    APN = 'AT+CGDCONT=1,"IP","%s"'
    AGAIN = False  # each +UUSORF announces what to read

    def urcs(self):
        self.at.urc("+UUSORF:", self._data)
        self.at.urc("+UUSOCL:", self._closed)

    def _data(self, line):
        self.data = True

    def _closed(self, line):
        self.lost()

    def connect(self):
        self.at.cmd("AT+UDCONF=1,1")  # hex mode: payloads as hex text
        for line in self.at.cmd("AT+USOCR=17", 5000):
            self.id = int(line[7:])

    def put(self, buf, n):
        c = b'AT+USOST=%d,"%s",%d,%d,"' % (self.id, self.host.encode(), self.port, n)
        self.at.cmd(c + hexlify(memoryview(buf)[:n]) + b'"', 10000)

    def get(self):
        out = []

        def on(line):  # +USORF: s,"ip",port,n, (cut at the 4th comma) then "hex"; or +USORF: s,0
            if line.endswith(b","):
                n = int(line.split(b",")[-2])
                out.append(unhexlify(self.at.binary(2 * n + 2)[1:-1]))

        self.at.cmd("AT+USORF=%d,1024" % self.id, 5000, on=on, head=b"+USORF:", commas=4)
        return out[0] if out else None

    def disconnect(self):
        self.at.cmd("AT+USOCL=%d" % self.id, 5000)

    id = 0
