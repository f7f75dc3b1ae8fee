# mesosync — the two set-up commands are `make run` and `make test`.
# Everything they need is installed here, so a fresh machine with only the Rust
# toolchain, git, make and Python works.

CARGO ?= cargo
MANIFESTS ?= manifests
RUN_ARGS ?=

.PHONY: run test fmt-check clippy unit build bench sandbox clean

## run: the controller on ./manifests against the embedded sandbox
run: build
	./target/debug/mesosync validate $(MANIFESTS)

build:
	$(CARGO) build --bin mesosync

## test: formatting, lints, and the whole test suite
test: fmt-check clippy unit

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

clean:
	$(CARGO) clean
