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

.PHONY: lab check test test-as-user release install clean-venv

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

# On $(WORKERS) pytest-xdist workers (tests/helpers/workers.py): the tests that share a module-scoped
# fixture go to one worker together, every other test to whichever worker is free, the slow ones first;
# the notebooks are executed once for both workers. Then the tests marked `alone` (they count every
# process of the kernel uids on the machine, or time themselves), one at a time. The 25 slowest of each.
WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup --no-loadscope-reorder -m "not alone" --durations=25
	$(BIN)/python -m pytest -m alone --durations=25

# The tests marked `as_user` once more as an ordinary user, since root ignores file permissions (CI
# runs as root): those whose outcome depends on the permissions or on not being root. That is every
# test of a class graded by autograde (as root each kernel gets a fresh uid, as a user it runs as the
# user; nbgrader leaves what it autogrades read-only, which only a non-root owner trips over), the
# sandbox's limits, what `labkit publish` writes and rewrites, and tests/test_as_user.py (in
# tests/test_grading.py, test_layouts.py, test_publish.py, test_adversarial.py). Not the
# tests of reading downloads, zips, rosters and repairs, of publish's refusals and settings (the
# same as anyone), nor tests/test_adversarial_sandbox.py (every test there needs root: as a user they
# skip). As root, tests/run_as_user.py drops to $(TEST_USER), created when missing; as anyone else,
# they run as you.
TEST_USER  ?= labkit-grader
USER_TESTS := -n $(WORKERS) --dist loadgroup --no-loadscope-reorder -m as_user
test-as-user: $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then \
	    echo "test-as-user: the grading tests as the ordinary user $(TEST_USER)"; \
	    $(BIN)/python tests/run_as_user.py $(TEST_USER) -- $(BIN)/python -m pytest -p no:cacheprovider $(USER_TESTS); \
	else $(BIN)/python -m pytest $(USER_TESTS); fi

release: $(STAMP)
	$(BIN)/labkit release

clean-venv:
	rm -rf $(VENV)
