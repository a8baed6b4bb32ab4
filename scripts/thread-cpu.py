#!/usr/bin/env python3
"""Per-thread CPU use and voluntary context switches of running processes, over an interval.

Usage: scripts/thread-cpu.py [--secs S] NAME [NAME ...]

Samples /proc/<pid>/task/<tid>/{stat,status} of every process whose executable's file name is
one of NAME (e.g. `tpx tpx-load`), twice, S seconds apart (default 3), and prints each thread's
share of one CPU and its voluntary switches per second (how often it slept), busiest first.
What ARCHITECTURE.md ("Where the 0.9 ms went") quotes for a `make bench` run and an idle
`tpx up`: a thread near 50% with few sleeps a second is spinning.
"""
import argparse
import os
import time

TICKS = os.sysconf("SC_CLK_TCK")


def sample(names):
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if not argv or os.path.basename(argv[0].decode(errors="replace")) not in names:
            continue
        cmd = " ".join(a.decode(errors="replace") for a in argv if a)[:60]
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                stat = open(f"/proc/{pid}/task/{tid}/stat").read()
                status = open(f"/proc/{pid}/task/{tid}/status").read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks = int(fields[11]) + int(fields[12])  # utime + stime
            vcs = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
            out[(pid, tid)] = (comm, cmd, ticks, vcs)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--secs", type=float, default=3.0)
    ap.add_argument("names", nargs="+")
    a = ap.parse_args()
    before = sample(set(a.names))
    time.sleep(a.secs)
    after = sample(set(a.names))
    rows = []
    for key, (comm, cmd, ticks, vcs) in after.items():
        if key not in before:
            continue
        cpu = (ticks - before[key][2]) / TICKS / a.secs * 100
        sw = (vcs - before[key][3]) / a.secs
        rows.append((cpu, sw, key[0], comm, cmd))
    rows.sort(reverse=True)
    for cpu, sw, pid, comm, cmd in rows:
        if cpu > 0 or sw > 100:
            print(f"{cpu:6.1f}%  sleeps/s {sw:8.0f}  {pid:>7} {comm:<16} {cmd}")
    print(f"total {sum(r[0] for r in rows):.1f}% of one CPU")


if __name__ == "__main__":
    main()
