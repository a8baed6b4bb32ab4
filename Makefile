# tpx: the two commands of the README's quick start are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup demo test lint units unit planted bench fuzz-smoke fmt

setup:
	@bash scripts/setup.sh

## Runs the appliance with a demo load.
demo: setup
	$(CARGO) run --release -p tpx-node --bin tpx -- up --demo --duration 20

## The whole test suite: format, lints, unit, property and end-to-end tests, the simulator's
## planted bugs and a bounded fuzz run.
test: setup lint units unit planted fuzz-smoke

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## The systemd units (systemd-analyze verify and security <= 3.0, Type=notify with a watchdog)
## and the Ansible roles (ansible-lint, production profile, offline; installed by setup).
units:
	bash systemd/verify.sh
	cd ansible && $${TPX_LINT_VENV:-/opt/tpx-lint}/bin/ansible-lint --offline

## TPX_REQUIRE_TSHARK / TPX_REQUIRE_PROMTOOL: the dissector and Prometheus tests fail instead
## of skipping when tshark or promtool is missing.
unit:
	TPX_REQUIRE_TSHARK=1 TPX_REQUIRE_PROMTOOL=1 $(CARGO) test --workspace

## The simulator must catch each planted bug (test-only features of tpx-sequencer; the early
## duplicate answer and the apply of uncommitted records at step-down, which the session layer
## now keeps the simulator's clients from seeing, by the replica safety tests).
planted:
	$(CARGO) test -p tpx-sim --features planted-ack-before-replication --test planted
	$(CARGO) test -p tpx-sim --features planted-skip-term-check --test planted
	$(CARGO) test -p tpx-sequencer --features planted-apply-uncommitted-on-step-down --test safety planted_apply_uncommitted_on_step_down_is_caught
	$(CARGO) test -p tpx-sequencer --features planted-duplicate-before-commit --test safety planted_duplicate_before_commit_is_caught
	$(CARGO) test -p tpx-sim --features planted-fill-not-journaled-while-away --test planted

## Every fuzz target (wire decoders, the replication stream, engine vs reference book) for
## FUZZ_SECS each (default 10).
fuzz-smoke:
	FUZZ_REQUIRED=1 bash wire/fuzz-smoke.sh

fmt:
	$(CARGO) fmt --all

## The latency lab: `tpx up` (release) + `tpx-load` at stepped rates; writes lab-runs/<time>/.
bench: setup
	$(CARGO) build --release -p tpx-node --bin tpx -p tpx-benches --bin tpx-load -p tpx-tuning --bin tpx-tune
	bash scripts/lab-bench.sh

.PHONY: deb
## Debian packages for the Ansible roles (cargo-deb): target/debian/{tpx,tpx-feed,tpx-tune}.deb.
deb:
	bash scripts/deb.sh

.PHONY: e2e-ops
## Ansible roles end to end in a systemd-nspawn container (root; caches a Debian rootfs).
e2e-ops:
	bash ansible/test/run.sh
