"""A client over a primary/standby pair, as `tpx_client::FailoverClient` (client/src/failover.rs)
does it: a list of endpoints, reconnection to whichever node is primary after a failure, and the
re-sending of every request that has no answer yet.

    c = FailoverClient([("127.0.0.1", 9100), ("127.0.0.1", 9101)], account=1, session_id=1,
                       token="demo-token-1")
    c.send("EnterOrder", cl_ord_id=1, ...)
    kind, name, fields = c.recv()      # ("reply", "OrderAccepted", {...}), ...

What `recv` returns, as (kind, name, fields):
- ("reply", name, fields): a reply of the current primary;
- ("already_sequenced", None, {"cl_ord_id": id}): a re-sent request the new primary holds from
  before the failover (its first answer was lost with the old connection);
- ("failed_over", None, {"endpoint": i, "resent": n}): the client moved to endpoint i and
  re-sent n requests;
- (None, None, None): nothing within the timeout.

The rules (docs/PROTOCOL.md, "Sessions" and "Acknowledgement"): a re-sent request the log holds
already is answered OrderRejected(DuplicateClientOrderId) with seq 0, which here means "already
sequenced"; OrderRejected(Unavailable) for a pending request is no answer (the node stopped
serving, maybe after sequencing it): the client fails over and re-sends it; a standby refuses
logins with NotPrimary; a deposed primary ends the session with Logout(Failover), on which the
client fails over at once; the login resumes at the last seq seen + 1, so the new primary replays
what the client missed (fills of resting orders included), and a node that refuses the resume
(SequenceAhead, SequenceUnavailable) is passed over for the other, then both retried; a re-sent request whose answer came
in that replay is then answered DuplicateClientOrderId too, which the client drops.
"""

import socket
import time

from .client import Client, LoginRejected

# Requests that are answered by name of a cl_ord_id, and the field that names it.
_REQUEST_ID = {
    "EnterOrder": "cl_ord_id",
    "EnterOrderExt": "cl_ord_id",
    "ReplaceOrder": "new_cl_ord_id",
    "CancelOrder": "cl_ord_id",
}
_ANSWER_ID = {
    "OrderAccepted": "cl_ord_id",
    "OrderRejected": "cl_ord_id",
    "OrderReplaced": "new_cl_ord_id",
    "OrderCancelled": "cl_ord_id",
}


class FailoverClient:
    def __init__(self, endpoints, account, session_id, token, failover_timeout_s=10.0):
        self.endpoints = list(endpoints)
        self.account = account
        self.session_id = session_id
        self.token = token
        self.failover_timeout_s = failover_timeout_s
        self.current = 0
        self.client = None
        self.unanswered = {}  # cl_ord_id -> (name, fields)
        self.resent = set()
        self.replayed = set()
        self.resume_seq = 0  # 0: start at the session's end (a fresh client)
        self.failovers = 0
        self._reconnect_any()

    def _login(self, host, port, next_seq):
        c = Client.connect(host, port, timeout_s=1.0)
        try:
            c.login(self.account, self.session_id, self.token, next_seq)
        except BaseException:
            c.close()
            raise
        return c

    def _reconnect_any(self):
        """Tries every endpoint, starting with the current one, until one accepts the login.

        A node that refuses the resume with SequenceAhead (it has not applied the replies yet:
        a standby behind, a new primary still journaling) or SequenceUnavailable does not hold
        the replies this client is owed: the other node is tried, then both again after a pause
        (10 ms doubling to 320 ms) until `failover_timeout_s`, then the refusal is raised. The
        client never resumes without the replay on its own (`resume_at_end` does that, asked)."""
        self.client = None
        deadline = time.monotonic() + self.failover_timeout_s
        last = None
        pause_s = 0.01
        while True:
            behind = False
            for k in range(len(self.endpoints)):
                i = (self.current + k) % len(self.endpoints)
                host, port = self.endpoints[i]
                try:
                    c = self._login(host, port, self.resume_seq)
                    self.current = i
                    self.client = c
                    return
                except LoginRejected as e:
                    if e.reason == "NotAuthorized":
                        raise
                    behind = behind or e.reason in ("SequenceAhead", "SequenceUnavailable")
                    last = e
                except (OSError, ConnectionError, ValueError) as e:
                    last = e
            if time.monotonic() >= deadline:
                if isinstance(last, LoginRejected):
                    raise last
                raise TimeoutError("no endpoint accepted the login: %r" % (last,))
            if behind:
                time.sleep(pause_s)
                pause_s = min(pause_s * 2, 0.32)
            else:
                time.sleep(0.01)

    def resume_at_end(self):
        """Gives up on the replies not read yet: the next login starts at the session's end
        (after a SequenceUnavailable no node keeps them)."""
        self.resume_seq = 0

    def _failover(self):
        """Moves to the primary and re-sends every unanswered request, in cl_ord_id order."""
        if self.client is not None:
            self.resume_seq = self.client.last_seq + 1
            try:
                self.client.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.client.close()
            self.client = None
        self.current = (self.current + 1) % len(self.endpoints)
        self._reconnect_any()
        self.failovers += 1
        for cl in sorted(self.unanswered):
            name, fields = self.unanswered[cl]
            self.client.send(name, **fields)
        self.resent = set(self.unanswered)
        self.replayed = set()
        return ("failed_over", None, {"endpoint": self.current, "resent": len(self.resent)})

    def send(self, name, **fields):
        """Sends a request, kept until answered (to be re-sent after a failover)."""
        key = _REQUEST_ID.get(name)
        if key is not None:
            self.unanswered[fields[key]] = (name, fields)
        try:
            if self.client is None:
                raise ConnectionError("not connected")
            self.client.send(name, **fields)
        except (OSError, ConnectionError):
            self._failover()  # kept in `unanswered`: re-sent there

    def recv(self, timeout_s=1.0):
        if self.client is None:
            return self._failover()
        try:
            name, m = self.client.recv(timeout_s)
        except (OSError, ConnectionError):
            return self._failover()
        if name is None:
            return (None, None, None)
        if name == "Logout" and m.get("reason") == "Failover":
            # This node stopped being the primary and ended the session: move at once.
            return self._failover()
        if name == "OrderRejected" and m["reason"] == "Unavailable" and m["cl_ord_id"] in self.unanswered:
            # Not known to be sequenced: this node stopped serving; the new primary decides.
            return self._failover()
        key = _ANSWER_ID.get(name)
        if key is not None:
            cl = m[key]
            duplicate = (
                name == "OrderRejected"
                and m["reason"] == "DuplicateClientOrderId"
                and m["seq"] == 0
            )
            if duplicate and cl in self.replayed:
                self.replayed.discard(cl)
                return self.recv(timeout_s)  # the replay brought its answer already
            was_resent = cl in self.resent
            self.resent.discard(cl)
            self.unanswered.pop(cl, None)
            if was_resent:
                if duplicate:
                    return ("already_sequenced", None, {"cl_ord_id": cl})
                self.replayed.add(cl)
        return ("reply", name, m)

    def close(self):
        if self.client is not None:
            self.client.close()
            self.client = None
