# chunkssl: `make test` and `make demo` install what they need on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
PYTHON ?= $(shell utils/find_python.sh)
PYTEST_ARGS ?=
# pytest-xdist workers (one per core); a test file stays on one worker (its module fixtures run once)
TEST_JOBS ?= auto

.PHONY: install test demo lock clean-venv

install: $(STAMP)

# The stamp depends on the files that define the environment, so a second run does nothing
# and a changed pin reinstalls.
$(STAMP): requirements.txt constraints.txt setup.py
	@if [ ! -x $(PY) ]; then \
	  test -n "$(PYTHON)" || { echo "make install: no Python >= 3.12 found (see utils/find_python.sh)" >&2; exit 1; }; \
	  echo "Creating $(VENV) with $(PYTHON)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --progress-bar off -c constraints.txt -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@
	@echo "Installed chunkssl into $(VENV)"

test: install
	$(PY) -m pytest tests -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

demo: install
	bash egs2/mini_synth/demo.sh

# Re-lock every installed version after changing requirements.txt.
lock: install
	@( echo "# Locked versions of every package in .venv (regenerate: make lock). Used as pip -c constraints.txt."; \
	   $(PY) -m pip freeze --exclude-editable | grep -v '^chunkssl' ) > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt

clean-venv:
	rm -rf $(VENV)
