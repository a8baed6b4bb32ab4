"""FailoverClient's rules without a server (the login and the connection stubbed): a node that
refuses the resume with SequenceAhead is passed over and retried, never logged into without the
replay; Logout(Failover) moves the client at once. The end-to-end runs are in test_failover.py."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tpx_client.client import LoginRejected  # noqa: E402
from tpx_client.failover import FailoverClient  # noqa: E402


class Sock:
    def shutdown(self, how):
        pass


class Conn:
    """A logged-in connection that yields the frames it is given."""

    def __init__(self, frames):
        self.frames = list(frames)
        self.last_seq = 7
        self.sent = []
        self.sock = Sock()

    def recv(self, timeout_s):
        return self.frames.pop(0) if self.frames else (None, None)

    def send(self, name, **fields):
        self.sent.append((name, fields))

    def close(self):
        pass


class Scripted(FailoverClient):
    """Logins answered from a script: an exception to raise or a connection to return."""

    def __init__(self, script, resume_seq):
        self.script = list(script)
        self.calls = []
        self.endpoints = [("a", 1), ("b", 2)]
        self.account, self.session_id, self.token = 1, 1, "t"
        self.failover_timeout_s = 2.0
        self.current, self.client = 0, None
        self.unanswered, self.resent, self.replayed = {}, set(), set()
        self.resume_seq, self.failovers = resume_seq, 0

    def _login(self, host, port, next_seq):
        self.calls.append((host, next_seq))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


class FailoverRules(unittest.TestCase):
    def test_a_node_behind_is_passed_over_never_resumed_without_the_replay(self):
        conn = Conn([])
        c = Scripted([LoginRejected("SequenceAhead"), LoginRejected("NotPrimary"),
                      LoginRejected("SequenceAhead"), conn], resume_seq=5)
        c._reconnect_any()
        self.assertIs(c.client, conn)
        self.assertEqual(c.calls, [("a", 5), ("b", 5), ("a", 5), ("b", 5)])
        self.assertEqual(c.current, 1)

    def test_a_refusal_that_lasts_is_raised_not_swallowed(self):
        c = Scripted([LoginRejected("SequenceUnavailable")] * 1000, resume_seq=5)
        c.failover_timeout_s = 0.05
        with self.assertRaises(LoginRejected) as e:
            c._reconnect_any()
        self.assertEqual(e.exception.reason, "SequenceUnavailable")
        self.assertTrue(all(n == 5 for _, n in c.calls))

    def test_logout_failover_moves_to_the_other_node_at_once(self):
        old = Conn([("Logout", {"reason": "Failover"})])
        new = Conn([])
        c = Scripted([new], resume_seq=0)
        c.client = old
        c.unanswered = {3: ("EnterOrder", {"cl_ord_id": 3})}
        kind, _, m = c.recv(0.01)
        self.assertEqual(kind, "failed_over")
        self.assertEqual(m, {"endpoint": 1, "resent": 1})
        self.assertEqual(c.calls, [("b", 8)])  # resumes after the last reply read (7)
        self.assertEqual(new.sent, [("EnterOrder", {"cl_ord_id": 3})])


if __name__ == "__main__":
    unittest.main()
