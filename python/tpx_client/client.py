"""A blocking order-entry session over TCP, following docs/PROTOCOL.md "Order entry over TCP".

    c = Client.connect("127.0.0.1", 9100)
    c.login(account=1, session_id=1, token="demo-token-1", next_seq=1)
    c.send("EnterOrder", cl_ord_id=1, price=60000, qty=1, instrument=1, side="Buy",
           kind="Limit", tif="Gtc")
    name, reply = c.recv()

Frames are one message each, the first two bytes (the header's length) giving its size.
Replies (templates 32-39) carry `seq`; the client tracks the last one it processed so that a
reconnect asks for `last_seq + 1` and the server replays what was missed.
"""

import socket
import time

from . import wire

MAX_FRAME = 256


class LoginRejected(Exception):
    """The server refused the login (reason as named in the LoginRejectReason enum)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def token_from_text(text):
    """The 32-byte token field for a text token: its bytes left-aligned, zero-padded (as
    `tpx_client::token_from_str` does; at most 32 bytes)."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(raw) > 32:
        raise ValueError("a token is at most 32 bytes")
    return raw + b"\0" * (32 - len(raw))


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.last_seq = 0
        self.session = None

    @classmethod
    def connect(cls, host, port, timeout_s=5.0):
        s = socket.create_connection((host, port), timeout=timeout_s)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s)

    def close(self):
        self.sock.close()

    def send(self, name, **fields):
        self.sock.sendall(wire.encode(name, **fields))

    def login(
        self, account, session_id, token, next_seq=None, cancel_on_disconnect=False, drop_copy=False
    ):
        """Logs in; `next_seq` defaults to last processed + 1 (1 on a new client). With an
        option set, sends LoginWithOptions (cancel on disconnect, drop copy: PROTOCOL.md
        "Sessions"). Returns the LoginAccepted fields; raises LoginRejected."""
        if next_seq is None:
            next_seq = self.last_seq + 1
        options = {}
        if cancel_on_disconnect or drop_copy:
            options = dict(cancel_on_disconnect=cancel_on_disconnect, drop_copy=drop_copy)
        self.send(
            "LoginWithOptions" if options else "Login",
            account=account,
            session_id=session_id,
            requested_next_seq=next_seq,
            token=token_from_text(token) if not isinstance(token, bytes) else token,
            **options,
        )
        name, m = self.recv(timeout_s=5.0)
        if name == "LoginRejected":
            raise LoginRejected(m["reason"])
        if name != "LoginAccepted":
            raise wire.WireError("expected LoginAccepted, got %s" % name)
        self.session = (account, session_id)
        # The next reply is m["next_seq"] (with next_seq 0: the session's current end), so the
        # last one processed is the one before it.
        self.last_seq = m["next_seq"] - 1
        return m

    def recv_frame(self, timeout_s=5.0):
        """The next frame's bytes, or None on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            if len(self.buf) >= 2:
                n = int.from_bytes(self.buf[:2], "little")
                if n < wire.HEADER_LEN or n > MAX_FRAME:
                    raise wire.WireError("impossible frame length %d" % n)
                if len(self.buf) >= n:
                    frame = bytes(self.buf[:n])
                    del self.buf[:n]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk

    def recv(self, timeout_s=5.0, heartbeats=False):
        """(name, fields) of the next message (server heartbeats skipped unless asked), or
        (None, None) on timeout. A sequenced reply advances `last_seq`."""
        deadline = time.monotonic() + timeout_s
        while True:
            frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame is None:
                return None, None
            name, m = wire.decode(frame)
            if name == "ServerHeartbeat" and not heartbeats:
                continue
            seq = m.get("seq", 0) if wire.BY_NAME[name] >= 32 else 0
            if seq:
                self.last_seq = seq
            return name, m

    def query(self, name, request_id, timeout_s=5.0, **fields):
        """Sends query `name` (QueryOrder, QueryOpenOrders, QueryBalances, QueryPositions; an
        absent instrument is 0xFFFFFFFF) and reads its answer (PROTOCOL.md "Queries"). Returns
        (items, done, other): the data messages' fields, the QueryDone's fields (None if the
        query was refused: then `other` ends with the OrderRejected), and every other message
        received meanwhile, as (name, fields)."""
        self.send(name, request_id=request_id, **fields)
        items, other = [], []
        deadline = time.monotonic() + timeout_s
        while True:
            n, m = self.recv(max(0.0, deadline - time.monotonic()))
            if n is None:
                raise TimeoutError("no end of query %d" % request_id)
            if n == "QueryDone" and m["request_id"] == request_id:
                return items, m, other
            if n in ("OrderStatus", "BalanceStatus", "PositionStatus") and (
                m["request_id"] == request_id
            ):
                items.append(m)
                continue
            other.append((n, m))
            if n == "OrderRejected" and m["seq"] == 0 and m["cl_ord_id"] == request_id:
                return items, None, other

    def recv_until(self, pred, timeout_s=5.0):
        """Messages received until one satisfies pred(name, fields), that one included."""
        got = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            name, m = self.recv(max(0.0, deadline - time.monotonic()))
            if name is None:
                break
            got.append((name, m))
            if pred(name, m):
                return got
        raise TimeoutError("no matching message; got %r" % [n for n, _ in got])
