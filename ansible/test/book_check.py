"""`make e2e-ops`: orders into the deployed node, and its book as the node says it is.

    python3 book_check.py HOST PORT

Logs in as the admin account (9) and funds account 1 with USDT and BTC on shard 0 (risk is on:
without balances every order is refused), then as account 1 rests 12 buys and 12 sells on
BTC-USDT around 60,000, cancels two, replaces one, and lets one more order cross (a fill).
Prints the node's book of instrument 1 as JSON on stdout: {"bids": [[price, qty, orders], ...],
"asks": [...]}, best first, from an open-orders query of account 1 (the only account with
orders), i.e. what a feed handler's L2 book must show."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))

from tpx_client import Client  # noqa: E402

USDT, BTC, SHARD, INSTRUMENT = 1, 2, 0, 1


def login(host, port, account, token):
    deadline = time.monotonic() + 30
    while True:
        c = Client.connect(host, port)
        try:
            c.login(account, 1, token, 0)
            return c
        except Exception:
            c.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def until(c, pred, what):
    got = c.recv_until(lambda n, m: pred(n, m), timeout_s=10)
    name, m = got[-1]
    if name == "OrderRejected":
        raise SystemExit("%s: rejected %r" % (what, m))
    return m


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    admin = login(host, port, 9, "e2e-admin")
    for rid, (asset, amount) in enumerate([(USDT, 10**13), (BTC, 10**11)], start=1):
        admin.send("AdminDeposit", request_id=rid, amount=amount, account=1, asset=asset,
                   shard=SHARD)
        until(admin, lambda n, m: n in ("AdminAccepted", "OrderRejected"), "deposit")
    c = login(host, port, 1, "e2e-token-1")
    order = dict(instrument=INSTRUMENT, kind="Limit", tif="Gtc", stp="None")
    cl = 0
    for i in range(12):
        for side, price in (("Buy", 59_990 - i), ("Sell", 60_010 + i)):
            cl += 1
            c.send("EnterOrder", cl_ord_id=cl, side=side, price=price, qty=1 + i % 3, **order)
            until(c, lambda n, m: n in ("OrderAccepted", "OrderRejected"), "order %d" % cl)
    for victim in (3, 8):
        c.send("CancelOrder", cl_ord_id=victim, remaining_qty=0)
        until(c, lambda n, m: n in ("OrderCancelled", "OrderRejected"), "cancel %d" % victim)
    cl += 1
    c.send("ReplaceOrder", orig_cl_ord_id=5, new_cl_ord_id=cl, price=59_985, qty=4)
    until(c, lambda n, m: n in ("OrderReplaced", "OrderRejected"), "replace")
    # A buy that lifts the best ask (self-trade prevention off: account 1 trades with itself).
    cl += 1
    c.send("EnterOrder", cl_ord_id=cl, side="Buy", price=60_010, qty=1, **order)
    until(c, lambda n, m: n in ("OrderExecuted", "OrderRejected"), "crossing order")
    items, done, other = c.query("QueryOpenOrders", request_id=1, instrument=INSTRUMENT)
    if done is None:
        raise SystemExit("open-orders query refused: %r" % (other,))
    levels = {"Buy": {}, "Sell": {}}
    for o in items:
        lv = levels[o["side"]].setdefault(o["price"], [0, 0])
        lv[0] += o["leaves_qty"]
        lv[1] += 1
    book = {
        "bids": [[p, q, n] for p, (q, n) in sorted(levels["Buy"].items(), reverse=True)],
        "asks": [[p, q, n] for p, (q, n) in sorted(levels["Sell"].items())],
    }
    print(json.dumps(book))


if __name__ == "__main__":
    main()
