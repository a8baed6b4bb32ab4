#!/usr/bin/env bash
# Checks every tpx unit (as installed, drop-ins included):
#   - `systemd-analyze verify` exits 0 and prints nothing at all (any stdout/stderr is a failure);
#   - `systemd-analyze security --offline=true` scores it at or below $TPX_SECURITY_MAX (3.0);
#   - the node, witness and feed units are `Type=notify` with a `WatchdogSec=` (the processes send
#     READY=1 and watchdog pings).
# Runs against a throwaway root (--root) holding the distribution's units, placeholder
# executables for the ExecStart= paths, and these units, so it needs no installed tpx and changes
# nothing on the host. Exit 0 only if every unit passes both.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
max=${TPX_SECURITY_MAX:-3.0}
units=(tpx-node@primary.service tpx-node@standby.service tpx-witness.service tpx-feed.service)

command -v systemd-analyze >/dev/null || { echo "verify.sh: systemd-analyze not found (apt-get install systemd)" >&2; exit 2; }

root=$(mktemp -d /tmp/tpx-units.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd" "$root/usr/local/bin" "$root/usr/bin"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
ln -s usr/bin "$root/bin"
for exe in /usr/local/bin/tpx /usr/local/bin/tpx-feed /usr/bin/sh; do
  printf '#!/bin/sh\n' >"$root$exe"
  chmod 755 "$root$exe"
done
cp -a "$here"/*.service "$here"/*.service.d "$root/etc/systemd/system/"
# What Ansible adds: the CPUAffinity drop-ins rendered from the core plan.
for u in tpx-node@ tpx-witness tpx-feed; do
  mkdir -p "$root/etc/systemd/system/$u.service.d"
  printf '[Service]\nCPUAffinity=0-1\n' >"$root/etc/systemd/system/$u.service.d/20-cpu-affinity.conf"
done

failed=0
for u in "${units[@]}"; do
  set +e
  out=$(systemd-analyze verify --root="$root" "$u" 2>&1)
  rc=$?
  set -e
  if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
    echo "FAIL verify   $u (rc=$rc)"
    printf '%s\n' "$out" | sed 's/^/    /'
    failed=1
  else
    echo "PASS verify   $u"
  fi
  report=$(LC_ALL=C systemd-analyze security --offline=true --root="$root" "$u" 2>&1 || true)
  score=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | tail -1)
  if [ -z "$score" ]; then
    echo "FAIL security $u: no score"
    printf '%s\n' "$report" | tail -5 | sed 's/^/    /'
    failed=1
  elif awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
    echo "PASS security $u: $score <= $max"
  else
    echo "FAIL security $u: $score > $max"
    printf '%s\n' "$report" | grep -E '^✗' | sed 's/^/    /' || true
    failed=1
  fi
done
for u in tpx-node@.service tpx-witness.service tpx-feed.service; do
  f="$root/etc/systemd/system/$u"
  if grep -qx 'Type=notify' "$f" && grep -q '^WatchdogSec=[1-9]' "$f"; then
    echo "PASS notify   $u"
  else
    echo "FAIL notify   $u: not Type=notify with a WatchdogSec="
    failed=1
  fi
done
exit "$failed"
