# The two commands of the README: `make run` and `make test`.
# Both build the virtualenv on first use; `make test` also installs the
# Debian packages the tests need (Open vSwitch, ethtool) when run as root.

PYTHON ?= python3
VENV ?= .venv
ARGS ?=
PYTEST_ARGS ?=
STAMP := $(VENV)/.xmpp_ofc-installed
BIN := $(VENV)/bin

.PHONY: run test lint format system-deps venv clean lab token rotate-token

venv: $(STAMP)

$(STAMP): setup.py pyproject.toml requirements/web-stack.txt requirements/kytos-utils.txt requirements/test-tools.txt
	@scripts/ensure-system-deps.sh venv
	@echo "==> creating virtualenv $(VENV) and installing the bundle (first run only)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@echo "==> upgrading Kytos' web stack (requirements/web-stack.txt, docs/web-stack.md)"
	$(BIN)/pip install --quiet --disable-pip-version-check --no-warn-conflicts -r requirements/web-stack.txt
	@echo "==> installing kytos-utils 2021.1, Kytos' own CLI (requirements/kytos-utils.txt)"
	$(BIN)/pip install --quiet --disable-pip-version-check --no-warn-conflicts -r requirements/kytos-utils.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps kytos-utils==2021.1
	@echo "==> installing the test tools that need the newer stack (requirements/test-tools.txt)"
	$(BIN)/pip install --quiet --disable-pip-version-check --no-warn-conflicts -r requirements/test-tools.txt
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/xmpp-ofc-controller $(ARGS)

# The REST API token (README, Security): `make token`, `make rotate-token`; ARGS="--base-dir DIR".
token: $(STAMP)
	@$(BIN)/xmpp-ofc-controller --print-token $(ARGS)

rotate-token: $(STAMP)
	@$(BIN)/xmpp-ofc-controller --rotate-token $(ARGS)

# The XMPP lab (docs/lab.md): make lab ARGS="up" | ARGS="status" | ARGS="load --duration 30" | ARGS="down"
lab: $(STAMP) system-deps
	$(BIN)/python -m xmpp_ofc.lab $(ARGS)

system-deps:
	@scripts/ensure-system-deps.sh test

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) system-deps lint
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
