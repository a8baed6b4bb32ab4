"""The Python FailoverClient against `tpx up` (a witness, a primary and a standby `tpx node`,
risk on, the demo accounts funded): a maker rests orders, a taker trades against some, the
primary is killed with SIGKILL while the maker has requests in flight, and both clients carry
on against the new primary. Every request is answered exactly once (accepted, or "already
sequenced" for one the old primary had sequenced), every fill reaches both sides exactly once
(no trade id twice), and fills made on the new primary against orders rested on the old one
reach the maker. TPX_BIN names the `tpx` binary."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tpx_client import FailoverClient  # noqa: E402

BTC_USDT = 1
ORDER = dict(instrument=BTC_USDT, kind="Limit", tif="Gtc", stp="None")


def free_port_pair():
    """A port p with p + 1 free too (tpx up's standby listens on the next port)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def addr(text):
    host, port = text.rsplit(":", 1)
    return (host, int(port))


class Tally:
    """Everything one FailoverClient was told, by cl_ord_id and trade id."""

    def __init__(self, client):
        self.c = client
        self.answers = {}  # cl_ord_id -> list of answer kinds
        self.fills = {}  # trade_id -> qty
        self.failovers = 0

    def pump(self, timeout_s=0.05):
        kind, name, m = self.c.recv(timeout_s)
        if kind == "failed_over":
            self.failovers += 1
        elif kind == "already_sequenced":
            self.answers.setdefault(m["cl_ord_id"], []).append("already_sequenced")
        elif kind == "reply":
            if name in ("OrderAccepted", "OrderRejected"):
                self.answers.setdefault(m["cl_ord_id"], []).append(name)
            elif name == "OrderExecuted":
                assert m["trade_id"] not in self.fills, "trade %d reported twice" % m["trade_id"]
                self.fills[m["trade_id"]] = m["qty"]
        return kind

    def until(self, pred, what, timeout_s=30.0):
        deadline = time.monotonic() + timeout_s
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s: %r" % (what, self.answers))
            self.pump()


class FailoverTest(unittest.TestCase):
    def setUp(self):
        binary = os.environ.get("TPX_BIN")
        if not binary:
            raise unittest.SkipTest("TPX_BIN not set")
        self.dir = tempfile.TemporaryDirectory(prefix="tpx-py-up-")
        self.addCleanup(self.dir.cleanup)
        port = free_port_pair()
        self.out_path = os.path.join(self.dir.name, "up.out")
        self.out = open(self.out_path, "w")
        self.addCleanup(self.out.close)
        self.up = subprocess.Popen(
            [binary, "up", "--listen", "127.0.0.1:%d" % port,
             "--dir", os.path.join(self.dir.name, "cluster")],
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        self.addCleanup(self.stop_up)
        out = self.wait_for(r"tpx up: ready, order entry on", 60)
        m = re.search(r"node 1 \(primary\) order entry (\S+) .*node 2 \(standby\) order entry (\S+)", out)
        self.assertIsNotNone(m, out)
        self.endpoints = [addr(m.group(1)), addr(m.group(2))]
        pid = re.search(r"node-1 \(pid (\d+)\): primary", out)
        self.assertIsNotNone(pid, out)
        self.primary_pid = int(pid.group(1))

    def wait_for(self, pattern, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with open(self.out_path) as f:
                out = f.read()
            if re.search(pattern, out):
                return out
            if self.up.poll() is not None:
                raise RuntimeError("tpx up exited: " + out)
            time.sleep(0.05)
        raise RuntimeError("no %r in tpx up's output" % pattern)

    def stop_up(self):
        if self.up.poll() is None:
            self.up.send_signal(signal.SIGTERM)
            try:
                self.up.wait(20)
            except subprocess.TimeoutExpired:
                self.up.kill()
                self.up.wait()

    def test_orders_and_fills_survive_a_primary_kill(self):
        maker = Tally(FailoverClient(self.endpoints, 1, 1, "demo-token-1"))
        taker = Tally(FailoverClient(self.endpoints, 2, 1, "demo-token-2"))
        self.addCleanup(maker.c.close)
        self.addCleanup(taker.c.close)
        # 20 resting sells, 60100..60119, one lot each; all acknowledged.
        for i in range(1, 21):
            maker.c.send("EnterOrder", cl_ord_id=i, side="Sell", qty=1, price=60099 + i, **ORDER)
        maker.until(lambda: len(maker.answers) == 20, "the first 20 acks")
        self.assertTrue(all(a == ["OrderAccepted"] for a in maker.answers.values()), maker.answers)
        # The taker lifts the 5 cheapest.
        taker.c.send("EnterOrder", cl_ord_id=1, side="Buy", qty=5, price=60104, **ORDER)
        taker.until(lambda: sum(taker.fills.values()) == 5, "the taker's 5 fills")
        maker.until(lambda: sum(maker.fills.values()) == 5, "the maker's 5 fills")

        # 10 more sells in flight, then the primary dies.
        for i in range(21, 31):
            maker.c.send("EnterOrder", cl_ord_id=i, side="Sell", qty=1, price=60099 + i, **ORDER)
        os.kill(self.primary_pid, signal.SIGKILL)
        maker.until(lambda: len(maker.answers) == 30, "answers to the 10 in flight")
        self.assertGreaterEqual(maker.failovers, 1)
        kinds = [a[0] for cl, a in maker.answers.items() if cl > 20]
        sys.stderr.write(
            "around the kill: %d accepted, %d already sequenced\n"
            % (kinds.count("OrderAccepted"), kinds.count("already_sequenced"))
        )
        for cl, a in sorted(maker.answers.items()):
            self.assertEqual(len(a), 1, "order %d answered %r" % (cl, a))
            self.assertIn(a[0], ("OrderAccepted", "already_sequenced"), "order %d: %r" % (cl, a))

        # On the new primary the taker lifts 10 more: orders rested on the old primary and the
        # ones sent around the kill.
        taker.c.send("EnterOrder", cl_ord_id=2, side="Buy", qty=10, price=60114, **ORDER)
        taker.until(lambda: sum(taker.fills.values()) == 15, "the taker's fills on the new primary")
        maker.until(lambda: sum(maker.fills.values()) == 15, "the maker's fills on the new primary")
        self.assertEqual(sorted(maker.fills), sorted(taker.fills), "both sides of every trade")
        self.assertEqual(taker.answers.get(2), ["OrderAccepted"])
        # Nothing more arrives: no late duplicate of anything.
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            maker.pump()
            taker.pump()
        self.assertEqual(sum(maker.fills.values()), 15)
        self.assertTrue(all(len(a) == 1 for a in maker.answers.values()), maker.answers)


if __name__ == "__main__":
    unittest.main()
