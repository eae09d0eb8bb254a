# tocsin — the two everyday commands are `make run` and `make test`; `make lint` before a commit.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_PORT ?= 8000

.PHONY: run test lint bench conformance venv clean docs shell demo

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Runs the demo target and the daemon on the embedded default configuration, in the foreground.
run: $(STAMP)
	@mkdir -p logs state
	@$(BIN)/tocsin demo-target --port $(DEMO_PORT) & demo=$$!; \
	trap 'kill $$demo 2>/dev/null' EXIT INT TERM; \
	echo "tocsin: metrics on http://127.0.0.1:9469/metrics, status page on http://127.0.0.1:9469/"; \
	$(BIN)/tocsin run --config etc/tocsin.yml

# An alert that fires and resolves in about half a minute (etc/demo.yml, etc/demo-rules.yml): the
# demo target, a daemon probing every second, and 15 s of `tocsin load` that make the target answer
# 503; watch the daemon's log for "alert firing: DemoServiceDown" and then "alert resolved". Ctrl-C stops all.
demo: $(STAMP)
	@mkdir -p state
	@$(BIN)/tocsin demo-target --port $(DEMO_PORT) & demo=$$!; \
	$(BIN)/tocsin run --config etc/demo.yml & daemon=$$!; \
	trap 'kill $$demo $$daemon 2>/dev/null' EXIT INT TERM; \
	sleep 3; \
	echo "tocsin: 15 s of load on the demo target: it answers 503 while busy, so demo-api goes down"; \
	$(BIN)/tocsin load --duration 15s --concurrency 10 http://127.0.0.1:$(DEMO_PORT)/simulate/error; \
	echo "tocsin: load over; the alert resolves within seconds. Status: http://127.0.0.1:9469/ (Ctrl-C to stop)"; \
	wait $$daemon

# A shell with .venv/bin first on PATH: `tocsin check config etc/tocsin.yml` works as written.
shell: $(STAMP)
	@echo "tocsin: .venv/bin is on PATH in this shell; exit to leave"
	@PATH="$(CURDIR)/$(BIN):$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)" $${SHELL:-/bin/sh}

test: $(STAMP)
	$(BIN)/python -m pytest

# Both linters run even if the first finds something, so one pass shows everything to fix.
# Their rules are in pyproject.toml ([tool.ruff], [tool.mypy]); their versions are pinned there.
lint: $(STAMP)
	@status=0; \
	$(BIN)/ruff check src tests bench || status=1; \
	$(BIN)/mypy src || status=1; \
	exit $$status

# The generated references; a test fails when the committed ones differ from these.
docs: $(STAMP)
	$(BIN)/tocsin config reference --output docs/configuration.md
	$(BIN)/tocsin config schema --output docs/tocsin.schema.json
	$(BIN)/python -m tocsin.reference.metrics_reference --output docs/metrics.md

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Random PromQL expressions and alerting rules through tocsin and Debian's promtool 2.42 (a few minutes).
conformance: $(STAMP)
	$(BIN)/python bench/promql_diff.py --bases 1 2 3 --cases 100 --alert-cases 40

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache state

# Install as a systemd service (as root): a venv in $(INSTALL_DIR), the unit, and a
# configuration in $(CONFIG_DIR) unless one is there already. See docs/install.md.
INSTALL_DIR ?= /opt/tocsin
CONFIG_DIR  ?= /etc/tocsin
.PHONY: install uninstall
install:
	INSTALL_DIR=$(INSTALL_DIR) CONFIG_DIR=$(CONFIG_DIR) PYTHON=$(PYTHON) sh systemd/install.sh install

uninstall:
	INSTALL_DIR=$(INSTALL_DIR) CONFIG_DIR=$(CONFIG_DIR) sh systemd/install.sh uninstall
