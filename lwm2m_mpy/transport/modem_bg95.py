"""Quectel BG95 / BG96 UDP over AT+QI* (docs/modem.md dialect table, column bg95)."""
from .at import ATError
from .modem import Modem


class Driver(Modem):
    APN = 'AT+QICSGP=1,1,"%s","","",1'
    ACTIVATE = "AT+QIACT=1"

    def urcs(self):
        self.at.urc("+QIURC:", self._qiurc)
        self.at.urc("+QIOPEN:", self._qiopen)

    def _qiurc(self, line):  # +QIURC: "recv",0 | "pdpdeact",1 | "closed",0
        if b'"recv"' in line:
            self.data = True
        elif b'"pdpdeact"' in line or b'"closed"' in line:
            self.lost()

    def _qiopen(self, line):  # +QIOPEN: 0,<err>
        self.flag = line[8:].split(b",")[-1].strip()

    def connect(self):
        self.flag = None
        self.at.cmd('AT+QIOPEN=1,0,"UDP","%s",%d,0,0' % (self.host, self.port), 10000, on=self._qiopen)
        if self.wait_for(b"0", 10000) != b"0":
            raise ATError("+QIOPEN: %s" % self.flag)

    def put(self, buf, n):
        self.at.cmd("AT+QISEND=0,%d" % n, 5000, b">", memoryview(buf)[:n])

    def get(self):
        out = []

        def on(line):  # "+QIRD: n", then CR LF and the n bytes
            n = int(line[6:])
            if n:
                out.append(self.at.binary(n))

        self.at.cmd("AT+QIRD=0,1500", 5000, on=on)
        return out[0] if out else None

    def disconnect(self):
        self.at.cmd("AT+QICLOSE=0", 5000)
