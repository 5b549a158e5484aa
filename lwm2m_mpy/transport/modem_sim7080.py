"""SIMCom SIM7080G / SIM7000 UDP over AT+CA* (docs/modem.md dialect table, column sim7080)."""
from .at import ATError
from .modem import Modem


class Driver(Modem):
    APN = 'AT+CNCFG=0,1,"%s"'

    def urcs(self):
        self.at.urc("+CADATAIND:", self._data)
        self.at.urc("+APP PDP:", self._pdp)

    def _data(self, line):
        self.data = True

    def _pdp(self, line):  # +APP PDP: 0,ACTIVE | 0,DEACTIVE
        if line.endswith(b"DEACTIVE"):
            self.lost()
        else:
            self.flag = b"ACTIVE"

    def activate(self):
        self.flag = None
        self.at.cmd("AT+CNACT=0,1", 10000)
        if self.wait_for(b"ACTIVE", 10000) != b"ACTIVE":
            raise ATError("no +APP PDP: 0,ACTIVE")

    def connect(self):
        for line in self.at.cmd('AT+CAOPEN=0,0,"UDP","%s",%d' % (self.host, self.port), 10000):
            if not line.endswith(b",0"):  # +CAOPEN: 0,<result>: 0 is success
                raise ATError(line.decode())

    def put(self, buf, n):
        self.at.cmd("AT+CASEND=0,%d" % n, 5000, b">", memoryview(buf)[:n])

    def get(self):
        out = []

        def on(line):  # "+CARECV: n," (cut at the comma, the n bytes follow) or "+CARECV: 0"
            n = int(line[9:].rstrip(b","))
            if n:
                out.append(self.at.binary(n))

        self.at.cmd("AT+CARECV=0,1460", 5000, on=on, head=b"+CARECV:")
        return out[0] if out else None

    def disconnect(self):
        self.at.cmd("AT+CACLOSE=0", 5000)
