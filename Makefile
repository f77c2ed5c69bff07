# tzemu: two commands do all set-up on a fresh Debian machine with Python 3.11.
#   make run   - create .venv, install, run the main job (tzemu run)
#   make test  - same set-up, run the whole suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench fuzz install cross tas clean

# Debian's AArch64 cross toolchain builds the C TAs (ta/toolchain.py); installed when missing
# and we may (root with apt), otherwise those TAs are left out with a warning.
CROSS_PKGS := gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu
cross:
	@command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      $(CROSS_PKGS) >/dev/null) || echo "warning: could not install $(CROSS_PKGS)"; \
	  else echo "warning: no aarch64-linux-gnu-gcc: install $(CROSS_PKGS) for the C TAs"; fi; }

# The built-in TAs as signed <uuid>.ta files (ta/builtin.py), built before anything boots.
tas: $(STAMP) cross
	$(PY) -m ta.builtin

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP) tas
	$(VENV)/bin/tzemu run

test: $(STAMP) tas
	$(PY) -m pytest

BENCHES := smc_roundtrip protection_cost protmem ffa svp trace
bench: $(STAMP)
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; done

# Coverage-guided fuzzing of the hostile-input surfaces (docs/security.md); a crash lands in
# tests/fuzz/corpus/<target>/ and `make test` replays it from then on.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := msg_arg ffa_desc ffa_call ioctl ta_elf aes_stream
fuzz: $(STAMP)
	$(PY) -m pip install -q -e '.[fuzz]' || echo "atheris unavailable: random inputs instead"
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS)s)"; \
	  FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) tests/fuzz/run_fuzz.py $$t || exit 1; \
	done

clean:
	rm -rf $(VENV) build *.egg-info
