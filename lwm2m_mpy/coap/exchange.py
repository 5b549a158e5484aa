"""CoAP message layer for one peer (RFC 7252 §4): retransmission, NSTART 1, de-duplication, token matching.

Sans-IO: datagrams come in through `feed(data, now)`, go out through the `send(buf, n)` callable, and
`step(now)` fires timers and returns the next deadline. `now` is a ticks_ms value (wraps; use ticks_diff).
"""
from micropython import const

from .._compat import ticks_add, ticks_diff, urandom
from ..errors import BadMessage
from .message import Msg, Writer

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)

_ACK_TIMEOUT = const(2000)  # ms, §4.8; a random 0-50 % is added (ACK_RANDOM_FACTOR 1.5)
_MAX_RETRANSMIT = const(4)
_EXCHANGE_LIFETIME = const(247000)  # ms, §4.8.2
_MAX_TRANSMIT_WAIT = const(93000)  # ms: bound on waiting for a separate response after an empty ACK
_CACHE = const(4)  # responses kept for duplicate CONs
_TKL = const(4)
_SIZE1 = const(60)


class Exchange:
    """One peer's message layer. `handler(msg, writer)` answers requests; `log(str)` reports events."""

    def __init__(self, send, handler, size=1152, log=None):
        self.send = send
        self.handler = handler
        self.log = log
        self.rx = Msg()
        self.tx = Writer(size)
        # Random start so a peer that de-duplicates across clients (or our previous run) is not confused.
        r = urandom(2)
        self.mid = r[0] << 8 | r[1]
        r = urandom(4)
        self.tok = r[0] << 24 | r[1] << 16 | r[2] << 8 | r[3]
        # The one outstanding request (NSTART 1)
        self.p_data = None  # bytes of a CON being retransmitted, None once ACKed or for NON
        self.p_mid = -1
        self.p_tok = -1  # token awaited; -1 = no request outstanding
        self.p_cb = None
        self.p_due = 0
        self.p_wait = 0
        self.p_tries = 0
        # De-duplication: [mid, expiry, response bytes] per slot, oldest replaced first
        self.c_mid = [-1] * _CACHE
        self.c_exp = [0] * _CACHE
        self.c_data = [None] * _CACHE
        self.c_next = 0
        self.sep_mid = -1  # MID of the last separate CON response we acknowledged
        self.rst = None  # rst(mid): a RST that answers none of our outstanding CONs (a NON notification's)
        self.ack_ms = _ACK_TIMEOUT  # RFC 7252 §4.8: a transmission parameter; tests shorten it
        self.now = 0

    # -- outgoing requests -------------------------------------------------------------------------
    def busy(self):
        return self.p_cb is not None

    def begin(self, code, mtype=_CON):
        """Start a request in the shared writer; add options/payload, then call `request(cb, now)`."""
        self.tok = (self.tok + 1) & 0xFFFFFFFF
        self.mid = (self.mid + 1) & 0xFFFF
        self.tx.header(mtype, code, self.mid, self.tok, _TKL)
        return self.tx

    def request(self, cb, now):
        """Send what is in the writer. `cb(msg)` gets the response, `cb(None)` on timeout, `cb(False)` on RST.

        A CON notification (a response code, RFC 7641) is done with its empty ACK; a request with its response.
        """
        tx = self.tx
        self.p_mid = self.mid
        self.p_tok = self.tok if tx.buf[1] < 32 else -2  # -2: no response awaited, the ACK ends it
        self.p_cb = cb
        if tx.buf[0] >> 4 & 3 == _CON:
            self.p_data = tx.buf[: tx.n]  # a copy already (a bytearray slice): one allocation
            self.p_tries = 0
            r = urandom(2)
            self.p_wait = self.ack_ms + (r[0] << 8 | r[1]) % (self.ack_ms >> 1)
        else:
            self.p_data = None
            self.p_wait = _MAX_TRANSMIT_WAIT
        self.p_due = ticks_add(now, self.p_wait)
        self.send(tx.buf, tx.n)

    def cancel(self):
        """Forget the outstanding request without calling its callback."""
        self.p_tok = -1
        self.p_data = None
        self.p_cb = None

    def _finish(self, msg):
        cb = self.p_cb
        self.cancel()
        if cb:
            cb(msg)

    # -- timers ------------------------------------------------------------------------------------
    def step(self, now):
        """Retransmit or give up on the outstanding request; returns the next deadline or None."""
        self.now = now
        if self.p_cb is None:
            return None
        if ticks_diff(self.p_due, now) > 0:
            return self.p_due
        if self.p_data is not None and self.p_tries < _MAX_RETRANSMIT:
            self.p_tries += 1
            self.p_wait *= 2  # §4.2 exponential back-off
            self.p_due = ticks_add(now, self.p_wait)
            if self.log:
                self.log("retransmit mid=%d try=%d" % (self.p_mid, self.p_tries))
            self.send(self.p_data, len(self.p_data))
            return self.p_due
        if self.log:
            self.log("timeout mid=%d" % self.p_mid)
        self._finish(None)
        return None

    # -- incoming ----------------------------------------------------------------------------------
    def feed(self, data, now, cut=False):
        """Handle one datagram from the peer; `cut`: the transport may have truncated it."""
        self.now = now
        n = len(data)
        m = self.rx
        if cut:  # RFC 7252 §5.9.2.9: too large for us now; answer a CON request 4.13 from its header
            tkl = data[0] & 15
            if data[0] >> 4 == 4 and 0 < data[1] < 32 and tkl <= 8:
                tx = self.tx
                tx.header(_ACK, 141, data[2] << 8 | data[3], 0, 0)
                tx.buf[0] |= tkl
                tx.buf[4 : 4 + tkl] = data[4 : 4 + tkl]
                tx.n = 4 + tkl
                tx.option(_SIZE1, n - 1)  # the largest request that fits right now
                self.send(tx.buf, tx.n)
            return
        try:
            m.decode(data, n)
        except BadMessage as e:
            # §4.2/§4.3: reject a malformed CON with RST; anything else is silently dropped.
            if self.log:
                self.log("bad message: %s" % e)
            if n >= 4 and data[0] >> 4 == 4:  # version 1, type CON
                self._empty(_RST, data[2] << 8 | data[3])
            return
        t = m.type
        code = m.code
        mid = m.mid
        if code == 0:  # Empty: ping, or ACK/RST of our request
            if t == _CON:
                self._empty(_RST, mid)
            elif mid == self.p_mid and self.p_cb is not None:
                if t == _RST:
                    self._finish(False)
                elif t == _ACK:
                    if self.p_tok == -2:  # the ACK of a CON notification: done
                        self._finish(m)
                    else:  # separate response follows (§5.2.2); stop retransmitting
                        self.p_data = None
                        self.p_due = ticks_add(now, _MAX_TRANSMIT_WAIT)
            elif t == _RST and self.rst:
                self.rst(mid)
        elif code < 32:  # a request
            if t == _CON and mid in self.c_mid:  # the membership test runs in C: cheap when absent
                k = self.c_mid.index(mid)
                if ticks_diff(self.c_exp[k], now) > 0:
                    d = self.c_data[k]  # a duplicate: the same answer again, not a second execution
                    self.send(d, len(d))
                    return
            if t > _NON:
                return  # a request in an ACK or RST is meaningless: drop
            tx = self.tx
            if t == _NON:
                self.mid = mid = (self.mid + 1) & 0xFFFF
            tx.reply(_ACK if t == _CON else _NON, mid, m)
            self.handler(m, tx)
            self.send(tx.buf, tx.n)
            if t == _CON:
                k = self.c_next
                self.c_next = (k + 1) % _CACHE
                self.c_mid[k] = mid
                self.c_exp[k] = ticks_add(now, _EXCHANGE_LIFETIME)
                self.c_data[k] = tx.buf[: tx.n]  # a copy already: one allocation, not two
        else:  # a response: piggybacked in an ACK, or separate (CON/NON) matched by token
            # Tokens are byte strings (§5.3.1): ours are always TKL bytes, so length and value must match
            mine = self.p_tok >= 0 and m.tkl == _TKL and m.token() == self.p_tok
            if t == _ACK:
                if mine and mid == self.p_mid:
                    self._finish(m)
                return
            if t == _RST:
                return
            if t == _CON:
                # §4.5: a duplicate of a separate response we took already is acknowledged again
                self._empty(_ACK if mine or mid == self.sep_mid else _RST, mid)
                if mine:
                    self.sep_mid = mid
            if mine:
                self._finish(m)

    def _empty(self, mtype, mid):
        tx = self.tx
        tx.header(mtype, 0, mid, 0, 0)
        self.send(tx.buf, 4)
