# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make plan   - the offline plan of a stack (STACK=dev by default; make plan STACK=prod)
#   make test   - the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STACK  ?= dev

SCAN_VENV := .venv-scan

.PHONY: plan test test-wheel test-rules lint format clean bench bench-ci docs scan e2e e2e-scale e2e-clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# A committed stack (Pulumi.<STACK>.yaml), or one of the variants in examples/stacks/.
stack_file = $(firstword $(wildcard Pulumi.$(1).yaml) $(wildcard examples/stacks/Pulumi.$(1).yaml))
STACK_FILE = $(call stack_file,$(STACK))
# Every stack the checkers below cover: the committed ones and the variants.
ALL_STACKS := dev prod prod-karpenter dev-auto-mode dev-dra

plan: $(VENV)/.installed
	$(PY) -m tools.plan --stack $(STACK) $(if $(STACK_FILE),--config-file $(STACK_FILE))

# checkov in its own virtualenv (its pins clash with the runtime's); not part of make test.
$(SCAN_VENV)/.installed: requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	touch $@

# Plan every stack, then run checkov's Kubernetes checks over their manifests: fails on any finding
# that no object explains with a skip annotation.
scan: $(VENV)/.installed $(SCAN_VENV)/.installed
	$(foreach s,$(ALL_STACKS),$(PY) -m tools.plan --stack $(s) --config-file $(call stack_file,$(s)) > /dev/null &&) true
	$(PY) -m tools.scan --checkov $(SCAN_VENV)/bin/checkov $(ALL_STACKS)

# promtool (Prometheus 3.16, built once from the Go module proxy into the e2e toolchain's cache) over
# every stack's alert rules and the adapter's queries, and the alerts' unit tests in tests/promtool.
test-rules: $(VENV)/.installed
	$(PY) -m tools.rules --stacks $(ALL_STACKS)

bench: $(VENV)/.installed
	$(PY) -m tools.bench

# The bench at the sizes CI runs: the generator and the measurement cannot break unseen.
bench-ci: $(VENV)/.installed
	$(PY) -m tools.bench --sizes 1 10 --out build/bench-ci.json

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest

# The library as a team installs it: build the wheel, install it into a fresh virtualenv outside the
# repository (dependencies from the package index or pip's cache) and plan examples/team-service there.
test-wheel: $(VENV)/.installed
	$(PY) -m pytest -n0 -m wheel tests/test_wheel.py

# The real Pulumi engine and Kubernetes provider drive the program against a Kubernetes control plane on
# 127.0.0.1, AWS simulated (tools/e2e), the control plane at each stack's Kubernetes minor. The first run
# builds the toolchain from Go modules into ~/.cache/aiplatform-e2e (about 20 minutes, about 10 more per
# further minor; make e2e-clean removes it). Writes build/e2e/report.json.
e2e: $(VENV)/.installed
	$(PY) -m pytest -n0 -m "e2e and not scale" -v -s tests/e2e

# The scale figures (10, 50 and 100 generated services against a floor): long, so not part of make e2e.
e2e-scale: $(VENV)/.installed
	$(PY) -m pytest -n0 -m "e2e and scale" -v -s tests/e2e/test_scale.py

e2e-clean: $(VENV)/.installed
	$(PY) -m tools.e2e.toolchain --clean

# Regenerate the component reference (docs/reference) from the code; a test fails while it is stale.
docs: $(VENV)/.installed
	$(PY) -m tools.refdocs

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(VENV)/.installed
	$(PY) -m ruff format .

clean:
	rm -rf build $(VENV) $(SCAN_VENV)
