# wuacache: `make demo` and `make test` are the two entry points; each one
# installs what it needs (system packages, a virtual environment) first.

VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SYSTEM_PACKAGES := cabextract osslsigncode openssh-client sshpass

.PHONY: demo test lint ps-syntax ps-contracts ansible-lint sanity pytest pytest-oldest-ansible mutants bench-catalog system-packages venv oldest-ansible-venv clean

demo: system-packages venv
	scripts/demo

test: system-packages venv lint sanity pytest-oldest-ansible pytest

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

# The main environment has the newest ansible-core; the end-to-end scan also
# runs on the oldest one meta/runtime.yml accepts, in an environment of its own
# with only what the scan needs, and checks which ansible-core it ran. The
# bridge's statement coverage is the whole run's business (make pytest).
OLDEST_ANSIBLE := 2.19
OLDEST_ANSIBLE_VENV := .build/venv-ansible-$(OLDEST_ANSIBLE)
pytest-oldest-ansible: system-packages oldest-ansible-venv
	WUACACHE_EXPECT_ANSIBLE_CORE=$(OLDEST_ANSIBLE) $(OLDEST_ANSIBLE_VENV)/bin/python -m pytest \
		-p no:wuacache_lab.coverage_report -m oldest_ansible tests/e2e

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

# The latest patch release of the oldest ansible-core, held to the versions
# requirements-dev.txt asks for the rest.
oldest-ansible-venv: $(OLDEST_ANSIBLE_VENV)/.installed

$(OLDEST_ANSIBLE_VENV)/.installed: requirements-dev.txt tests/lab/pyproject.toml server/pyproject.toml
	test -x $(OLDEST_ANSIBLE_VENV)/bin/python || "$$(scripts/find-python)" -m venv $(OLDEST_ANSIBLE_VENV)
	$(OLDEST_ANSIBLE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_ANSIBLE_VENV)/bin/python -m pip install --quiet --constraint requirements-dev.txt \
		'ansible-core==$(OLDEST_ANSIBLE).*' pywinrm requests-ntlm pyspnego pytest -e tests/lab -e server
	touch $@

clean:
	-test -x $(VENV)/bin/lab && $(VENV)/bin/lab down --state-dir .lab/demo
	rm -rf .build .lab tests/output
