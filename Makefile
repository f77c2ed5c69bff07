# tzemu: two commands do all set-up on a fresh Debian machine with Python 3.11.
#   make run   - create .venv, install, run the main job (tzemu run)
#   make test  - same set-up, run the whole suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tzemu run

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/smc_roundtrip.py

clean:
	rm -rf $(VENV) build *.egg-info
