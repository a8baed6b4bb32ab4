#!/usr/bin/env bash
# Installs what the build and tests need on a fresh Debian 12 machine (run as root).
# Idempotent: it installs only what is missing, so `make demo` and `make test` call it each time.
set -euo pipefail

APT_PACKAGES=(pkg-config libhwloc-dev libudev-dev libclang-dev libbsd-dev clang)

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

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi
