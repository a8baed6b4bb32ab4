#!/usr/bin/env bash
# Builds the Debian packages the Ansible roles install (cargo-deb; `make deb`):
#   tpx.deb       tpx (node, witness, tools), tpx-node@.service + role drop-ins, tpx-witness.service
#   tpx-feed.deb  tpx-feed, tpx-feed.service
#   tpx-tune.deb  tpx-tune, the operations guide (/usr/share/doc/tpx/OPERATIONS.md)
# into $DEB_DIR (default target/debian) under those fixed names, from the $PROFILE build
# (release by default; `dev` for quick test deploys). Installs cargo-deb when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
out=${DEB_DIR:-${CARGO_TARGET_DIR:-target}/debian}
if ! cargo deb --version >/dev/null 2>&1; then
  echo "deb.sh: installing cargo-deb" >&2
  cargo install cargo-deb --version 3.8.0 --locked --quiet
fi
cargo build --profile "$profile" -p tpx-node --bin tpx -p tpx-feed --bin tpx-feed -p tpx-tuning --bin tpx-tune
mkdir -p "$out"
for crate in tpx-node:tpx tpx-feed:tpx-feed tpx-tuning:tpx-tune; do
  p=${crate%%:*}
  name=${crate##*:}
  cargo deb -p "$p" --no-build --profile "$profile" --no-strip -o "$out/$name.deb" >/dev/null
  echo "deb.sh: $out/$name.deb ($(dpkg-deb -f "$out/$name.deb" Package Version | tr '\n' ' '))"
done
