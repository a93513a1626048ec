# From a fresh clone, two commands:
#   make run    install into .venv, then run the main job on the local target
#   make test   install into .venv, then run every check, notebook and test (what CI runs)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TARGET ?= local

.PHONY: run test check install lock

run: $(VENV)/.installed
	$(BIN)/dbxml doctor --target $(TARGET)
	$(BIN)/dbxml run monthly --target $(TARGET) -p month=2013-01..2013-12

test: $(VENV)/.installed check
	$(BIN)/dbxml doctor
	$(BIN)/nbdev_test --n_workers 2 --flags slow
	$(BIN)/pytest

check: $(VENV)/.installed
	$(BIN)/ruff check dbxml nbs tests setup.py
	$(BIN)/dbxml check

install: $(VENV)/.installed

$(VENV)/.installed: settings.ini setup.py constraints.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else "dbxml needs Python 3.10 to 3.12, but $(PYTHON) is %d.%d: run make PYTHON=python3.12 ..." % v)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[local,dev]"
	touch $@

# Rewrite constraints.txt from the ranges in settings.ini (needs uv: pip install uv).
lock:
	uv pip compile setup.py --extra local --extra dev --universal --python-version 3.10 --custom-compile-command "make lock" --refresh -o constraints.txt
