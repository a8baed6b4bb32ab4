#!/usr/bin/env bash
# End-to-end test of the Ansible roles: boots a Debian bookworm systemd-nspawn container, runs
# the site playbook over SSH, runs it again and requires changed=0, checks that the node, witness
# and feed services run with the CPU affinity of the core plan, drills a primary failure (the
# host must come back as a standby, fenced from the primary role) and runs the playbook a third
# time (still changed=0, primary left alone). Prints timings.
#
# Needs root, and network access to the Debian mirror and PyPI the first time (the rootfs and
# the ansible-core venv are cached). Installs what it lacks with apt-get: debootstrap,
# systemd-container (systemd-nspawn), openssh-client, python3-venv.
# The container shares the host's network and kernel: run-time kernel tuning is switched off
# in its inventory (tpx-tune apply --dry-run only) and the script checks that the host's
# sysctls are unchanged at the end.
#
# Environment:
#   TPX_ROOTFS_CACHE  rootfs cache          [/var/cache/tpx-rootfs]
#   TPX_OPS_VENV      ansible virtualenv    [/var/cache/tpx-ops/venv]
#   TPX_E2E_SSH_PORT  sshd port on 127.0.0.1 inside the container [2299]
#   TPX_DEB_DIR       a folder with tpx.deb, tpx-feed.deb, tpx-tune.deb to deploy [`scripts/deb.sh`
#                     builds them from the workspace: TPX_DEB_PROFILE=dev (default) or release]
# The container (one host) runs the primary role of `tpx node` (a single node: durable local log
# under /var/lib/tpx/log, terms granted by the witness over TCP), `tpx witness` and `tpx-feed`
# (embedded Aeron media driver, subscribed to a loopback UDP channel). They listen on the
# host's loopback, on the ports after the SSH port: replication +1, witness +2, feed +3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ansible_dir=$(dirname "$here")
repo=$(dirname "$ansible_dir")
cache=${TPX_ROOTFS_CACHE:-/var/cache/tpx-rootfs}
venv=${TPX_OPS_VENV:-/var/cache/tpx-ops/venv}
port=${TPX_E2E_SSH_PORT:-2299}
suite=bookworm
# The Debian mirror this host's own apt uses (deb822 `URIs:` or one-line `deb URL suite`), so the
# rootfs comes from where the host's packages come from; TPX_DEBIAN_MIRROR overrides it.
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    case "$f" in
    *.sources) awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f" ;;
    *) awk '$1 == "deb" && $3 ~ /^'"$suite"'$/ {print $2; exit}' "$f" ;;
    esac
  done | head -n1
}
mirror=${TPX_DEBIAN_MIRROR:-$(host_mirror)}
[ -n "$mirror" ] || { echo "ansible/test/run.sh: no Debian mirror in /etc/apt (set TPX_DEBIAN_MIRROR)" >&2; exit 1; }
# The base the brief asks for, plus what the roles need without network inside the container:
# libhwloc15/libudev1 (tpx-tune), python3-apt (ansible apt module), ethtool (NIC checks).
include=systemd,systemd-sysv,dbus,openssh-server,python3,procps,iproute2,kmod,libhwloc15,libudev1,python3-apt,ethtool
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}

t_start=$(date +%s)
now() { date +%s; }
log() { printf '[e2e %4ss] %s\n' "$(($(now) - t_start))" "$*"; }
die() {
  log "FAIL: $*"
  exit 1
}
declare -A timing

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, systemd-nspawn)"
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${need[*]}"
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- Ansible ---------------------------------------------------------------------------------
t=$(now)
if [ ! -x "$venv/bin/ansible-playbook" ]; then
  log "installing ansible-core into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q ansible-core
fi
timing[ansible_venv]=$(($(now) - t))

# The accounts file's token_sha256 of a text token (zero-padded to the 32-byte field).
token_sha256() {
  python3 -c 'import hashlib, sys; t = sys.argv[1].encode(); print(hashlib.sha256(t + bytes(32 - len(t))).hexdigest())' "$1"
}

# --- Packages --------------------------------------------------------------------------------
# What the roles install: the `tpx`, `tpx-feed` and `tpx-tune` packages of `make deb` (cargo-deb),
# here of debug binaries (TPX_DEB_PROFILE=release for the release build).
t=$(now)
deb_dir=${TPX_DEB_DIR:-$CARGO_TARGET_DIR/debian-e2e}
if [ -z "${TPX_DEB_DIR:-}" ]; then
  log "building the tpx, tpx-feed and tpx-tune packages (${TPX_DEB_PROFILE:-dev}; CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  mkdir -p "$cache"
  (cd "$repo" && DEB_DIR="$deb_dir" PROFILE="${TPX_DEB_PROFILE:-dev}" bash scripts/deb.sh) \
    >"$cache/tpx-build.log" 2>&1 || {
    tail -20 "$cache/tpx-build.log"
    die "the packages do not build (log: $cache/tpx-build.log)"
  }
fi
timing[build]=$(($(now) - t))
for p in tpx tpx-feed tpx-tune; do [ -s "$deb_dir/$p.deb" ] || die "no package at $deb_dir/$p.deb"; done
log "deploying $(cd "$deb_dir" && for p in tpx tpx-feed tpx-tune; do dpkg-deb -f $p.deb Package Version | tr '\n' ' '; done)"

# --- Root filesystem (cached) ----------------------------------------------------------------
rootfs="$cache/$suite"
stamp="$suite $include"
t=$(now)
if [ "$(cat "$rootfs/.tpx-rootfs" 2>/dev/null)" != "$stamp" ]; then
  log "building the rootfs with debootstrap (cold; cached in $rootfs)"
  mkdir -p "$cache"
  rm -rf "$rootfs.tmp"
  if ! debootstrap --variant=minbase --include="$include" "$suite" "$rootfs.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    tail -20 "$cache/debootstrap.log"
    die "debootstrap failed (log: $cache/debootstrap.log)"
  fi
  echo tpx-e2e >"$rootfs.tmp/etc/hostname"
  rm -rf "$rootfs"
  mv "$rootfs.tmp" "$rootfs"
  echo "$stamp" >"$rootfs/.tpx-rootfs"
  timing[rootfs]="$(($(now) - t)) (cold: debootstrap)"
else
  timing[rootfs]="0 (cached)"
fi

# --- A fresh copy for this run, so the cache stays pristine ----------------------------------
t=$(now)
work=$(mktemp -d "$cache/run.XXXXXX")
keys=$(mktemp -d /tmp/tpx-e2e-keys.XXXXXX)
nspawn_pid=
cleanup() {
  local rc=$?
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    log "stopping the container (nspawn pid $nspawn_pid)"
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "$nspawn_pid" 2>/dev/null || break
      sleep 1
    done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  rm -rf "$work" "$keys"
  exit "$rc"
}
trap cleanup EXIT
rm -rf "$work"
cp -a --reflink=auto "$rootfs" "$work"
ssh-keygen -q -t ed25519 -N '' -f "$keys/id" -C tpx-e2e
install -d -m 700 "$work/root/.ssh"
install -m 600 "$keys/id.pub" "$work/root/.ssh/authorized_keys"
mkdir -p "$work/etc/ssh/sshd_config.d"
cat >"$work/etc/ssh/sshd_config.d/tpx-e2e.conf" <<CONF
# The container shares the host's network: listen on loopback, on a port of our own.
Port $port
ListenAddress 127.0.0.1
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
CONF
timing[copy]=$(($(now) - t))
repl_port=$((port + 1))
witness_port=$((port + 2))
feed_port=$((port + 3))

# --- Boot ------------------------------------------------------------------------------------
for p in "$port" "$repl_port" "$witness_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "127.0.0.1:$p is already taken (set TPX_E2E_SSH_PORT)"
  fi
done
t=$(now)
log "booting the container"
systemd-nspawn -q -D "$work" -b --register=no --keep-unit --capability=CAP_IPC_LOCK,CAP_SYS_RESOURCE \
  </dev/null >"$keys/nspawn.log" 2>&1 &
nspawn_pid=$!
sshc=(ssh -q -i "$keys/id" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o ConnectTimeout=2 root@127.0.0.1)
for i in $(seq 1 90); do
  kill -0 "$nspawn_pid" 2>/dev/null || { tail -30 "$keys/nspawn.log"; die "the container exited during boot"; }
  "${sshc[@]}" true 2>/dev/null && break
  [ "$i" -eq 90 ] && { tail -30 "$keys/nspawn.log"; die "no SSH after 90 s"; }
  sleep 1
done
timing[boot_to_ssh]=$(($(now) - t))
log "container up (nspawn pid $nspawn_pid), SSH on 127.0.0.1:$port"

# --- Inventory -------------------------------------------------------------------------------
cat >"$keys/inventory.yml" <<INV
---
all:
  vars:
    ansible_host: 127.0.0.1
    ansible_port: $port
    ansible_user: root
    ansible_ssh_private_key_file: $keys/id
    ansible_ssh_common_args: "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    ansible_python_interpreter: /usr/bin/python3
    tpx_deb_dir: $deb_dir
    tpx_node_listen: "127.0.0.1:0"
    tpx_node_replication_listen: "127.0.0.1:$repl_port"
    tpx_witness_address: "127.0.0.1:$witness_port"
    tpx_witness_listen: "127.0.0.1:$witness_port"
    tpx_node_accounts:
      - {id: 1, name: e2e, token_sha256: $(token_sha256 e2e-token-1), rate_limit_per_sec: 1000}
      - {id: 9, name: e2e-admin, token_sha256: $(token_sha256 e2e-admin), rate_limit_per_sec: 1000, admin: true}
    tpx_feed_extra_args: ["--levels", "50"]
    tpx_marketdata_channel: "aeron:udp?endpoint=127.0.0.1:$feed_port"
    tpx_feed_interval_ms: 1000
    # The container shares the host's kernel: never change its settings from here.
    tpx_host_tuning_apply_runtime: false
    tpx_host_tuning_manage_grub: false
    tpx_host_tuning_irqbalance: false
    # No network inside the container for the tuned package (the profile file is still written).
    tpx_host_tuning_tuned: false
  children:
    tpx_nodes:
      children:
        tpx_primary:
          hosts:
            tpx-e2e:
              tpx_host_tuning_role: node
              tpx_node_role: primary
              tpx_node_bootstrap: true
        tpx_standby:
          hosts: {}
    tpx_witness:
      hosts:
        tpx-e2e: {}
    tpx_feed:
      hosts:
        tpx-e2e: {}
INV

host_state() {
  for f in /proc/sys/net/core/busy_poll /proc/sys/net/core/busy_read /proc/sys/kernel/timer_migration \
    /proc/sys/vm/stat_interval /proc/sys/vm/swappiness /proc/sys/vm/min_free_kbytes /proc/sys/vm/nr_hugepages \
    /proc/sys/kernel/sched_rt_runtime_us /sys/kernel/mm/transparent_hugepage/enabled /proc/irq/default_smp_affinity \
    /sys/devices/virtual/workqueue/cpumask; do
    printf '%s=%s\n' "$f" "$(cat "$f" 2>/dev/null || echo absent)"
  done
}
host_before=$(host_state)

playbook() {
  ANSIBLE_CONFIG="$ansible_dir/ansible.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 \
    PATH="$venv/bin:$PATH" ansible-playbook -i "$keys/inventory.yml" "$ansible_dir/site.yml"
}
recap() { grep -E '^tpx-e2e +:' "$1" | tail -1; }
field() { recap "$1" | sed -n "s/.* $2=\([0-9]*\).*/\1/p"; }

# --- Run 1 -----------------------------------------------------------------------------------
t=$(now)
log "site.yml, run 1"
playbook >"$keys/run1.log" 2>&1 || { tail -40 "$keys/run1.log"; die "run 1 failed"; }
timing[run1]=$(($(now) - t))
log "run 1: $(recap "$keys/run1.log")"

# --- Run 2: idempotent -----------------------------------------------------------------------
t=$(now)
log "site.yml, run 2 (must change nothing)"
playbook >"$keys/run2.log" 2>&1 || { tail -40 "$keys/run2.log"; die "run 2 failed"; }
timing[run2]=$(($(now) - t))
log "run 2: $(recap "$keys/run2.log")"
if [ "$(field "$keys/run2.log" changed)" != 0 ]; then
  grep -E '^changed:' -B2 "$keys/run2.log" | tail -30
  die "run 2 changed something"
fi

# --- Services run with the planned CPU affinity ----------------------------------------------
# RLIMIT_MEMLOCK above the inherited hard limit needs CAP_SYS_RESOURCE; where this machine's own
# bounding set lacks it, nothing (the container's systemd included) can raise it, so only the
# unit's configured limit is checked.
capbnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
if (((16#$capbnd >> 24) & 1)); then can_raise_memlock=yes; else can_raise_memlock=no; fi
check_unit() { # unit, affinity kind, want memlock unlimited (yes/no)
  local unit=$1 kind=$2 memlock=$3 state pid got want lim conf note=""
  state=$("${sshc[@]}" systemctl is-active "$unit" || true)
  [ "$state" = active ] || die "$unit is $state"
  pid=$("${sshc[@]}" systemctl show -p MainPID --value "$unit")
  got=$("${sshc[@]}" "awk '/^Cpus_allowed_list/ {print \$2}' /proc/$pid/status")
  want=$("${sshc[@]}" /usr/bin/tpx-tune render affinity --plan /etc/tpx/core-plan.toml --unit "$kind")
  lim=$("${sshc[@]}" "awk '/^Max locked memory/ {print \$4}' /proc/$pid/limits")
  conf=$("${sshc[@]}" systemctl show -p LimitMEMLOCK --value "$unit")
  [ "$got" = "$want" ] || die "$unit (pid $pid): Cpus_allowed_list $got, plan says $want"
  if [ "$memlock" = yes ]; then
    [ "$conf" = infinity ] || die "$unit: LimitMEMLOCK=$conf"
    if [ "$can_raise_memlock" = yes ]; then
      [ "$lim" = unlimited ] || die "$unit: memlock $lim"
    else
      note=" (this machine lacks CAP_SYS_RESOURCE, so the effective limit stays at the inherited hard limit)"
    fi
  fi
  log "PASS $unit pid $pid: Cpus_allowed_list $got = plan ($kind); LimitMEMLOCK=$conf, effective $lim$note"
}
# The unit's journal has a line matching the pattern within the time; prints the last one.
wait_journal() { # unit, extended regex, seconds
  local unit=$1 re=$2 secs=$3 line i
  for i in $(seq 1 "$secs"); do
    line=$("${sshc[@]}" journalctl -b -q -o cat --no-pager -u "$unit" | grep -E "$re" | tail -1 || true)
    [ -n "$line" ] && { printf '%s\n' "$line"; return 0; }
    sleep 1
  done
  "${sshc[@]}" journalctl -b -q -o cat --no-pager -u "$unit" | tail -20 | sed 's/^/    /' >&2
  return 1
}
# Hot threads pin themselves inside the unit's set: show each thread's CPUs.
show_threads() { # pid
  "${sshc[@]}" "for t in /proc/$1/task/*; do printf '%s %s\n' \"\$(cat \$t/comm)\" \"\$(awk '/^Cpus_allowed_list/ {print \$2}' \$t/status)\"; done" |
    sort | uniq -c | awk '{printf "    thread %-16s cpus %-8s x%s\n", $2, $3, $1}'
}
"${sshc[@]}" cat /etc/tpx/core-plan.toml | grep -E '^(host|role|degraded|housekeeping|irq|isolated) ' | sed 's/^/    plan: /'
check_unit tpx-node@primary.service node yes
check_unit tpx-witness.service witness no
check_unit tpx-feed.service feed yes
node_pid=$("${sshc[@]}" systemctl show -p MainPID --value tpx-node@primary.service)
show_threads "$node_pid"
role_line=$(wait_journal tpx-node@primary.service 'ROLE primary node=1 term=' 30) ||
  die "the primary did not take a term from the witness"
term1=$(printf '%s' "$role_line" | sed -n 's/.* term=\([0-9]*\).*/\1/p')
log "PASS tpx node (primary): \"$role_line\" (term granted by tpx witness on 127.0.0.1:$witness_port)"
log "     node: $("${sshc[@]}" journalctl -b -q -o cat --no-pager -u tpx-node@primary.service | grep -E 'listening on|accounts,|holds seq' | tr '\n' ';')"
feed_line=$(wait_journal tpx-feed.service '"type":"stats"' 20) || die "tpx-feed printed no stats line"
log "PASS tpx-feed running (embedded Aeron driver, aeron:udp?endpoint=127.0.0.1:$feed_port): ${feed_line:0:160}"
# The node's [md] (rendered by the role) publishes heartbeats on the stream the feed role derived
# from the same variables: the feed counts them, and no packet of a foreign stream.
# (serde_json writes the keys in either order, depending on its preserve_order feature.)
feed_line=$(wait_journal tpx-feed.service '"type":"stats".*"heartbeats":[1-9]|"heartbeats":[1-9][0-9]*,.*"type":"stats"' 30) ||
  die "tpx-feed received no heartbeat from the node's market data (stream ids differ?)"
printf '%s' "$feed_line" | grep -q '"foreign":0' || die "tpx-feed counted foreign packets: $feed_line"
log "PASS tpx-feed receives the node's market data (heartbeats, no foreign packets)"
# Orders into the deployed node (risk on: the admin account funds the trader first), then the
# feed handler's book of BTC-USDT must equal the node's (its open orders, as levels).
entry=$("${sshc[@]}" journalctl -b -q -o cat --no-pager -u tpx-node@primary.service |
  sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' | tail -1)
[ -n "$entry" ] || die "the primary printed no order-entry address"
python3 "$here/book_check.py" "${entry%:*}" "${entry##*:}" >"$keys/node-book.json" || {
  "${sshc[@]}" journalctl -b -q -o cat --no-pager -u tpx-node@primary.service | tail -30 | sed 's/^/    node: /' >&2
  die "sending orders to the node failed"
}
book_ok=""
for i in $(seq 1 30); do
  "${sshc[@]}" journalctl -b -q -o cat --no-pager -u tpx-feed.service >"$keys/feed.log" || true
  if python3 - "$keys/node-book.json" "$keys/feed.log" <<'PY'
import json, sys
want = json.load(open(sys.argv[1]))
last = None
for line in open(sys.argv[2]):
    line = line.strip()
    if line.startswith("{") and '"type":"book"' in line.replace(" ", ""):
        b = json.loads(line)
        if b.get("instrument") == 1:
            last = b
sys.exit(0 if last and last["bids"] == want["bids"] and last["asks"] == want["asks"] else 1)
PY
  then book_ok=yes; break; fi
  sleep 1
done
[ -n "$book_ok" ] || {
  echo "node: $(cat "$keys/node-book.json")" >&2
  grep '"type":"book"' "$keys/feed.log" | tail -1 >&2
  die "the feed handler's book of BTC-USDT differs from the node's"
}
log "PASS tpx-feed's book equals the node's after $(python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); print(len(b["bids"]), "bid and", len(b["asks"]), "ask levels")' "$keys/node-book.json") (risk on: funded by the admin account, orders, cancels, a replace, a fill)"
log "tpx-tune check --pid $node_pid inside the container (report only; the kernel is the host's):"
"${sshc[@]}" /usr/bin/tpx-tune check --pid "$node_pid" | sed 's/^/    /' || true

# --- Failover drill: a dead primary comes back as a standby, never as a primary --------------
t=$(now)
log "failover drill: SIGKILL the primary (pid $node_pid)"
"${sshc[@]}" kill -KILL "$node_pid"
for i in $(seq 1 30); do
  [ "$("${sshc[@]}" systemctl is-active tpx-node@standby.service || true)" = active ] && break
  [ "$i" -eq 30 ] && die "the standby role did not start after the primary failed"
  sleep 1
done
primary_state=$("${sshc[@]}" systemctl is-active tpx-node@primary.service || true)
[ "$primary_state" != active ] || die "the primary role is active again"
"${sshc[@]}" test -e /var/lib/tpx/primary.fenced || die "no fence file after the primary failed"
log "PASS primary $primary_state, standby active, /var/lib/tpx/primary.fenced written"
check_unit tpx-node@standby.service node yes
role_line=$(wait_journal tpx-node@standby.service 'ROLE primary node=1 term=' 30) ||
  die "the restarted node did not take the next term"
term2=$(printf '%s' "$role_line" | sed -n 's/.* term=\([0-9]*\).*/\1/p')
# Single node: the witness may hand its holder (node 1) the same term again, never a lower one.
[ "$term2" -ge "$term1" ] || die "term $term2 after failover is below $term1"
log "PASS the standby role (single node, no peer) took the term from the witness again: \"$role_line\" (before: term $term1)"
log "site.yml, run 3 (after failover: must leave the primary role alone and change nothing)"
playbook >"$keys/run3.log" 2>&1 || { tail -40 "$keys/run3.log"; die "run 3 failed"; }
log "run 3: $(recap "$keys/run3.log")"
[ "$(field "$keys/run3.log" changed)" = 0 ] || die "run 3 changed something"
[ "$("${sshc[@]}" systemctl is-active tpx-node@primary.service || true)" != active ] || die "run 3 started the primary role"
grep -q 'primary failed over' "$keys/run3.log" || die "run 3 did not report the failed-over primary"
timing[failover_and_run3]=$(($(now) - t))

# --- The host's kernel settings are untouched ------------------------------------------------
[ "$(host_state)" = "$host_before" ] || die "the host's kernel settings changed"
log "PASS host sysctls, THP, IRQ and workqueue masks unchanged"

log "timings (s): ansible venv ${timing[ansible_venv]}, build ${timing[build]}, rootfs ${timing[rootfs]}, copy ${timing[copy]}, boot to SSH ${timing[boot_to_ssh]}, run 1 ${timing[run1]}, run 2 ${timing[run2]}, failover drill + run 3 ${timing[failover_and_run3]}, total $(($(now) - t_start))"
log "PASS"
