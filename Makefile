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

# Chalice writes YAML when the merge template is YAML; sam.json is the artifact we deploy and lint.
package: $(STAMP)
	rm -rf build/package
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
	  $(VENV)/bin/chalice package --stage prod --merge-template infra/resources.yaml build/package
	$(PY) -c 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2], "w"), indent=2)' \
	  build/package/sam.yaml build/package/sam.json
	rm build/package/sam.yaml
	@# Chalice caches one ~20 MB zip per source hash; only the newest can be reused.
	ls -t .chalice/deployments/*.zip 2>/dev/null | tail -n +2 | xargs -r rm -f --

lint-template: package
	$(VENV)/bin/cfn-lint build/package/sam.json

bench: $(STAMP)
	$(PY) -m bench.write_cost

clean:
	rm -rf $(VENV) build .pytest_cache
