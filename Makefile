# Two commands for a new user: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test package lint-template bench clean

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'pip<26.3'
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m chalicelib.local

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

package: $(STAMP)
	rm -rf build/package
	$(VENV)/bin/chalice package --stage prod --merge-template infra/resources.yaml build/package

lint-template: package
	$(VENV)/bin/cfn-lint build/package/sam.json

bench: $(STAMP)
	$(PY) -m bench.write_cost

clean:
	rm -rf $(VENV) build .pytest_cache
