#!/usr/bin/env bash
# Installs what the build and tests need on a fresh Debian 12 machine (run as root).
# Idempotent: it installs only what is missing, so `make demo` and `make test` call it each time.
set -euo pipefail

# iproute2: `ip`, which the market-data tests use inside the network namespace they create.
# fonts-dejavu-core: the TrueType font tpx-load's plots draw their text with.
# tshark: decodes a capture with the generated Wireshark dissector (wire/tests/dissector.rs).
# nftables: `nft`, the fault lab's partitions and packet loss inside its network namespaces.
# systemd: `systemd-analyze`, which systemd/verify.sh (make units) checks the units with.
APT_PACKAGES=(pkg-config libhwloc-dev libudev-dev libclang-dev libbsd-dev clang iproute2 fonts-dejavu-core tshark nftables systemd)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# promtool (Prometheus's linter: node/src/observe/prometheus.rs checks a scrape with it) ships
# only in Debian's `prometheus` package; the server it also installs is not wanted running.
if ! command -v promtool >/dev/null; then
  echo "setup: installing prometheus (for promtool)"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  [ ${#missing[@]} -gt 0 ] || $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# cmake >= 3.30 builds the Aeron C client and media driver bundled in rusteron (tpx-md,
# tpx-feed); Debian 12 ships 3.25, so take it from PyPI (cmake 4.x) when missing or older.
cmake_ok() {
  command -v cmake >/dev/null 2>&1 || return 1
  local v
  v=$(cmake --version 2>/dev/null | head -n1 | awk '{print $3}')
  [ -n "$v" ] && [ "$(printf '%s\n' 3.30.0 "$v" | sort -V | head -n1)" = 3.30.0 ]
}
if ! cmake_ok; then
  echo "setup: installing cmake >= 3.30 with pip"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
  fi
  # Debian's own python refuses system-wide installs (PEP 668) unless told.
  $SUDO python3 -m pip install -q 'cmake>=3.30' 2>/dev/null \
    || $SUDO python3 -m pip install -q --break-system-packages 'cmake>=3.30'
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
  hash -r
  if ! cmake_ok; then
    echo "setup: cmake >= 3.30 is still not on PATH (pip put it in $(python3 -m site --user-base 2>/dev/null)/bin?)" >&2
    exit 1
  fi
fi

# ansible-lint (production profile) checks the Ansible roles in `make units`; pinned, in its own
# virtual environment so it never touches the system's Python packages.
LINT_VENV=${TPX_LINT_VENV:-/opt/tpx-lint}
if [ ! -x "$LINT_VENV/bin/ansible-lint" ]; then
  echo "setup: installing ansible-lint into $LINT_VENV"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  if ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  fi
  $SUDO /usr/bin/python3 -m venv "$LINT_VENV"
  $SUDO "$LINT_VENV/bin/pip" install -q 'ansible-core==2.19.14' 'ansible-lint==26.10.1'
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi

# cargo-fuzz runs the bounded fuzz step of `make test` (wire/fuzz-smoke.sh); a few minutes to
# build, once.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
