# Two commands on a fresh Linux machine with Python 3.10+:
#   make lab    create .venv when missing, install labkit, run the whole lab
#   make check  the same install, then the fast tier: no notebook, nbgrader, browser or cluster (before every commit)
#   make test   the same install, then the whole test suite, slowest 25 listed (before a push; CI runs it)
#   make release  regenerate the student notebooks (notebooks/) from solutions/ with nbgrader
# Data: $LABKIT_DATA when set (made absolute here), else data/ (downloaded on first use).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.labkit-installed

# nbgrader runs `alembic` by name: the environment's bin/ must be on PATH.
export PATH := $(BIN):$(PATH)
ifdef LABKIT_DATA
export LABKIT_DATA := $(abspath $(LABKIT_DATA))
endif

.PHONY: lab check test release install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all]"
	@touch $@

lab: $(STAMP)
	$(BIN)/labkit lab

# The markers come from what each test uses (tests/helpers/markers.py).
check: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not browser and not cluster"

test: $(STAMP)
	$(BIN)/python -m pytest --durations=25

release: $(STAMP)
	$(BIN)/labkit release

clean-venv:
	rm -rf $(VENV)
