# mesosync — the two set-up commands are `make run` and `make test`.
# Everything they need is installed here, so a fresh machine with only the Rust
# toolchain, git, make and Python works.

CARGO ?= cargo
MANIFESTS ?= manifests
RUN_ARGS ?=

.PHONY: run test test-deps fmt-check clippy unit build bench sandbox clean zookeeper-up zookeeper-down

## run: the controller on ./manifests against the embedded sandbox
run: build
	./target/debug/mesosync run $(MANIFESTS) --sandbox $(RUN_ARGS)

build:
	$(CARGO) build --bin mesosync

## test: formatting, lints, and the whole test suite
test: test-deps fmt-check clippy unit

## test-deps: what the integration tests run against. ZooKeeper (Debian's package) for
## the HA tests; if it cannot be installed those tests say so loudly and skip.
test-deps:
	@bash scripts/zookeeper.sh install || { \
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
		echo "!!! make test-deps: ZooKeeper could not be installed: the HA tests (tests/integration/ha.rs) will be SKIPPED"; \
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; }

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
