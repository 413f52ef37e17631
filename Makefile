# wuacache: `make demo` and `make test` are the two entry points; each one
# installs what it needs (system packages, a virtual environment) first.

VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SYSTEM_PACKAGES := cabextract osslsigncode openssh-client sshpass

.PHONY: demo test lint ps-syntax ps-contracts ansible-lint sanity pytest mutants bench-catalog system-packages venv clean

demo: system-packages venv
	scripts/demo

test: system-packages venv lint sanity pytest

lint: ps-syntax ps-contracts ansible-lint

ps-syntax: venv
	$(PYTHON) tests/quality/ps_syntax.py

# Every command, parameter, type and static member the scripts name is one
# Windows PowerShell 5.1 documents (the lab's contract tables).
ps-contracts: venv
	$(PYTHON) tests/quality/ps_contracts.py

ansible-lint: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ansible-lint

sanity: venv
	scripts/sanity

# Last, so that the run ends on pytest's summary line. pytest exits 5 when it
# collected no test, which fails the target like any other failure. The
# database tests run on SQLite and on a throwaway PostgreSQL server. The run
# fails when the lab executed less than 95% of the bridge's statements (those
# tests/lab/ps-coverage-exclusions.txt excuses count), and records what each
# test executed, from which the mutation tests (tests/mutation, last) choose
# the tests a changed line of the bridge must fail.
PS_COVERAGE := .build/ps-coverage
pytest: system-packages venv
	rm -rf $(PS_COVERAGE)
	scripts/with-postgres $(PYTHON) -m pytest --ps-coverage-min=95 --ps-coverage-per-test=$(PS_COVERAGE)

# Every systematic mutant of the bridge, not the sample of make test.
mutants: system-packages venv
	$(PYTHON) -m pytest tests/mutation --all-mutants

# Benchmarks are run by hand, never as part of the tests.
bench-catalog: system-packages venv
	scripts/ensure-system-packages time
	benchmarks/catalog-generation.sh

system-packages:
	scripts/ensure-system-packages $(SYSTEM_PACKAGES)

venv: $(INSTALLED)

$(INSTALLED): requirements-dev.txt tests/lab/pyproject.toml server/pyproject.toml
	test -x $(PYTHON) || "$$(scripts/find-python)" -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt -e tests/lab -e 'server[postgres]'
	touch $@

clean:
	-test -x $(VENV)/bin/lab && $(VENV)/bin/lab down --state-dir .lab/demo
	rm -rf .build .lab tests/output
