# From a fresh clone, two commands:
#   make run    install into .venv, then run the main job on the local target
#   make test   install into .venv, then run every check, notebook and test (what CI runs)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TARGET ?= local

# Nothing outside .venv may satisfy an import (nbs/decisions/0014-nothing-from-the-machine.md):
# no PYTHONPATH, no PYTHONHOME, no user site-packages.
ISOLATED := env -u PYTHONPATH -u PYTHONHOME PYTHONNOUSERSITE=1
# The tests also put a guard first on PATH: whatever starts "python3" or "python" from PATH,
# instead of the project's own interpreter, fails loudly where elsewhere it would lean on the machine.
GUARDED := $(ISOLATED) PATH="$(CURDIR)/.ci/guard:$$PATH"

.PHONY: run test test-fast doctor check secrets audit install lock docs preview results

run: $(VENV)/.installed
	@$(ISOLATED) $(BIN)/dbxml doctor --target $(TARGET)
	@$(ISOLATED) $(BIN)/dbxml run monthly --target $(TARGET) -p month=2013-01..2013-12

# doctor first: it prints the interpreter Spark's workers will run, and checks it imports their packages
test: $(VENV)/.installed doctor check
	$(GUARDED) $(BIN)/nbdev_test --n_workers 2 --flags slow --timing
	$(GUARDED) $(BIN)/pytest

# The fast tier (tests/README.md): the tests that start no Spark, run no pipeline and build no site; under
# 3 minutes, for every save. They wait on subprocesses (git, pre-commit, make, nbdev), so they run two test
# files at a time (pytest-xdist); `make test` runs them too, in one process with everything else.
test-fast: $(VENV)/.installed
	$(GUARDED) $(BIN)/pytest -m "not slow" -n 2 --dist loadfile

doctor: $(VENV)/.installed
	$(GUARDED) $(BIN)/dbxml doctor

check: $(VENV)/.installed secrets
	$(BIN)/ruff check dbxml nbs tests setup.py $(wildcard template)  # template/: not in forks
	$(BIN)/lint-imports --no-cache  # the layers: [tool.importlinter] in pyproject.toml
	$(GUARDED) $(BIN)/dbxml check

# detect-secrets over every file git tracks or would add, against the reviewed findings in
# .secrets.baseline (see SECURITY.md); a new finding fails. Refresh the baseline after review with
#   .venv/bin/detect-secrets scan --baseline .secrets.baseline && .venv/bin/detect-secrets audit .secrets.baseline
secrets: $(VENV)/.installed
	git ls-files -z --cached --others --exclude-standard | xargs -0 $(BIN)/detect-secrets-hook --baseline .secrets.baseline

# pip-audit of every pin in constraints.txt, for every Python and platform (network; CI's security job).
# Markers are dropped and the pins split so that no file pins a package twice (pip-audit refuses that);
# --strict fails on a pin it could not audit, so an audit that saw nothing cannot pass.
# Ignored vulnerabilities, each with why: none.
AUDIT_IGNORE :=
audit: $(VENV)/.installed
	rm -rf $(VENV)/audit && mkdir $(VENV)/audit
	awk -F' *;' '/^[A-Za-z0-9]/ {name = tolower(substr($$1, 1, index($$1, "==") - 1)); print $$1 > "$(VENV)/audit/pins-" ++seen[name] ".txt"}' constraints.txt
	status=0; for pins in $(VENV)/audit/pins-*.txt; do \
	  $(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off $(AUDIT_IGNORE:%=--ignore-vuln %) -r $$pins || status=1; \
	done; exit $$status

# The documentation site, rendered by nbdev and Quarto into docs/ (what the Docs workflow publishes);
# `make preview` serves it locally and re-renders on save. Quarto: the machine's, else .ci/with-quarto installs it.
docs: $(VENV)/.installed
	.ci/build-docs $(BIN)

preview: $(VENV)/.installed
	.ci/with-quarto $(BIN)/nbdev_preview

# Rewrite the outputs of the notebooks' `#| results` cells (what the site shows; nbs/decisions/0017-results-on-the-pages.md).
# The `#| year` ones read the local target's year: run `make run` first.
results: $(VENV)/.installed
	$(ISOLATED) $(BIN)/python -c 'from dbxml.results import write_results; write_results()'

install: $(VENV)/.installed

$(VENV)/.installed: settings.ini setup.py constraints.txt constraints-checkov.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else "dbxml needs Python 3.10 to 3.12, but $(PYTHON) is %d.%d: run make PYTHON=python3.12 ..." % v)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[local,dev]"
	# checkov gets a venv of its own: it ships a fork of python-hcl2 under the same import name
	$(BIN)/python -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet -r constraints-checkov.txt
	touch $@

# Rewrite constraints.txt from the ranges in settings.ini (needs uv: pip install uv).
lock:
	uv pip compile setup.py --extra local --extra dev --universal --python-version 3.10 --custom-compile-command "make lock" --refresh -o constraints.txt
