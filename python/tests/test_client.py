"""The Python client against a real `tpx node` (single node, durable log, risk off): login, an
order and its fill between two accounts, replay of missed replies after a reconnect, and a
typed LoginRejected. TPX_BIN names the `tpx` binary (cargo test -p tpx-node --test
python_client sets it)."""

import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tpx_client import Client, LoginRejected, token_from_text  # noqa: E402

BTC_USDT = 1  # built-in instrument: tick 1 USDT, lot 0.0001 BTC


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        binary = os.environ.get("TPX_BIN")
        if not binary:
            raise unittest.SkipTest("TPX_BIN not set")
        cls.dir = tempfile.TemporaryDirectory(prefix="tpx-py-")
        d = cls.dir.name
        cls.port = free_port()
        with open(os.path.join(d, "accounts.toml"), "w") as f:
            for acc in (1, 2):
                digest = hashlib.sha256(token_from_text("py-token-%d" % acc)).hexdigest()
                f.write(
                    '[[account]]\nid = %d\ntoken_sha256 = "%s"\nrate_limit_per_sec = 10000\n\n'
                    % (acc, digest)
                )
        with open(os.path.join(d, "node.toml"), "w") as f:
            f.write(
                'listen = "127.0.0.1:%d"\naccounts_file = "accounts.toml"\n'
                '[replication]\nlog_dir = "log"\nwrite = "buffered"\n' % cls.port
            )
        cls.out = open(os.path.join(d, "node.out"), "w")
        cls.node = subprocess.Popen(
            [binary, "node", "--config", os.path.join(d, "node.toml"), "--role", "primary"],
            cwd=d,
            stdout=cls.out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(os.path.join(d, "node.out")) as f:
                out = f.read()
            if cls.node.poll() is not None:
                raise RuntimeError("tpx node exited: " + out)
            if "ROLE primary" in out:
                return
            time.sleep(0.05)
        raise RuntimeError("tpx node did not become primary")

    @classmethod
    def tearDownClass(cls):
        cls.node.terminate()
        try:
            cls.node.wait(10)
        except subprocess.TimeoutExpired:
            cls.node.kill()
            cls.node.wait()
        cls.out.close()
        cls.dir.cleanup()

    def client(self, account, session_id=1, next_seq=None):
        # Right after a close the server may not have seen the old connection end yet: it
        # answers SessionInUse (and closes), so log in again on a new connection.
        deadline = time.monotonic() + 5
        while True:
            c = Client.connect("127.0.0.1", self.port)
            try:
                c.login(account, session_id, "py-token-%d" % account, next_seq)
            except LoginRejected as e:
                c.close()
                if e.reason != "SessionInUse" or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            self.addCleanup(c.close)
            return c

    def test_order_fill_and_replay(self):
        seller = self.client(1, session_id=7)
        buyer = self.client(2, session_id=7)
        order = dict(instrument=BTC_USDT, kind="Limit", tif="Gtc", stp="None", price=60000)
        seller.send("EnterOrder", cl_ord_id=1, side="Sell", qty=3, **order)
        name, m = seller.recv()
        self.assertEqual(name, "OrderAccepted", m)
        self.assertEqual((m["cl_ord_id"], m["seq"]), (1, 1))
        buyer.send("EnterOrder", cl_ord_id=1, side="Buy", qty=2, **order)
        got = buyer.recv_until(lambda n, m: n == "OrderExecuted")
        self.assertEqual([n for n, _ in got], ["OrderAccepted", "OrderExecuted"])
        fill = got[-1][1]
        self.assertEqual((fill["price"], fill["qty"], fill["liquidity"]), (60000, 2, "Taker"))
        name, m = seller.recv()
        self.assertEqual(name, "OrderExecuted", m)
        self.assertEqual((m["cl_ord_id"], m["qty"], m["liquidity"], m["seq"]), (1, 2, "Maker", 2))
        # Reconnect asking for seq 1: both replies again, byte-identical fields, then live.
        seller.close()
        again = self.client(1, session_id=7, next_seq=1)
        replay = [again.recv(), again.recv()]
        self.assertEqual([n for n, _ in replay], ["OrderAccepted", "OrderExecuted"])
        self.assertEqual([m["seq"] for _, m in replay], [1, 2])
        self.assertEqual(replay[1][1]["qty"], 2)
        self.assertEqual(again.last_seq, 2)
        # Resuming at last + 1 replays nothing; the next request's reply is seq 3.
        again.close()
        resumed = self.client(1, session_id=7, next_seq=3)
        resumed.send("CancelOrder", cl_ord_id=1, remaining_qty=0)
        name, m = resumed.recv()
        self.assertEqual(name, "OrderCancelled", m)
        self.assertEqual((m["seq"], m["cl_ord_id"]), (3, 1))

    def test_query_open_orders_is_unsequenced(self):
        # Runs after test_order_fill_and_replay (unittest sorts by name): its ids are higher.
        c = self.client(1, session_id=9)
        order = dict(instrument=BTC_USDT, kind="Limit", tif="Gtc", stp="None", side="Buy")
        c.send("EnterOrder", cl_ord_id=100, qty=1, price=50000, **order)
        c.send("EnterOrder", cl_ord_id=101, qty=2, price=49000, **order)
        c.recv_until(lambda n, m: n == "OrderAccepted" and m["cl_ord_id"] == 101)
        last = c.last_seq
        items, done, other = c.query("QueryOpenOrders", 5, instrument=0xFFFFFFFF)
        self.assertEqual(other, [])
        mine = sorted((m["cl_ord_id"], m["leaves_qty"]) for m in items if m["cl_ord_id"] >= 100)
        self.assertEqual(mine, [(100, 1), (101, 2)])
        self.assertEqual(
            (done["seq"], done["count"], done["request"]), (0, len(items), "QueryOpenOrders")
        )
        self.assertEqual(c.last_seq, last)
        items, done, _ = c.query("QueryOrder", 6, cl_ord_id=101)
        self.assertEqual([m["price"] for m in items], [49000])

    def test_wrong_token_is_a_typed_login_reject(self):
        c = Client.connect("127.0.0.1", self.port)
        self.addCleanup(c.close)
        with self.assertRaises(LoginRejected) as e:
            c.login(1, 1, "not-the-token", 1)
        self.assertEqual(e.exception.reason, "NotAuthorized")


if __name__ == "__main__":
    unittest.main()
