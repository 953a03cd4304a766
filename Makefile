# Two commands for a new user: `make run` and `make test`. Both create .venv when missing.
# Deploying: `make deploy STAGE=dev` / `make destroy STAGE=dev` (README, "Deploy").
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The AWS SAM CLI pins its own boto3, so it lives in a tool venv of its own.
SAM_VENV ?= .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed-stamp
export SAM_CLI_TELEMETRY := 0

# What `make package` ships: the definitions in AUTOMATIONS_DIR, plus examples/ with EXAMPLES=1.
AUTOMATIONS_DIR ?= automations
EXAMPLES ?=
PACKAGED_AUTOMATIONS := chalicelib/packaged_automations
# One CloudFormation stack per stage; PARAMETERS adds template parameters (Name=Value ...).
STAGE ?= dev
STACK ?= automation-runs-$(STAGE)
PARAMETERS ?=

.PHONY: run test soak package lint-template sam deploy destroy bench clean chromium docs

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'pip<26.3'
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(SAM_STAMP): infra/requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q -r infra/requirements-sam.txt
	touch $(SAM_STAMP)

sam: $(SAM_STAMP)

run: $(STAMP)
	$(PY) -m chalicelib.local

# The dashboard tests drive Debian's chromium through Playwright (which cannot download a
# browser of its own here); installed with apt (as root) when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

test: $(STAMP) $(SAM_STAMP) chromium
	$(PY) -m pytest -q $(PYTEST_ARGS)

# docs/reference.md from the pydantic models (a test fails when it is stale).
docs: $(STAMP)
	$(PY) -m chalicelib.reference

# Chalice writes YAML when the merge template is YAML; sam.json is the artifact we deploy and lint.
package: $(STAMP)
	$(PY) infra/package.py automations $(AUTOMATIONS_DIR) --into $(PACKAGED_AUTOMATIONS) \
	  $(if $(filter 1 true yes,$(EXAMPLES)),--examples examples)
	rm -rf build/package
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
	  $(VENV)/bin/chalice package --stage prod --merge-template infra/resources.yaml build/package
	$(PY) infra/package.py template build/package/sam.yaml build/package/sam.json
	rm build/package/sam.yaml
	@# Chalice caches one ~20 MB zip per source hash; only the newest can be reused.
	ls -t .chalice/deployments/*.zip 2>/dev/null | tail -n +2 | xargs -r rm -f --

lint-template: package $(SAM_STAMP)
	$(VENV)/bin/cfn-lint build/package/sam.json
	$(SAM) validate --lint --template-file build/package/sam.json --region $${AWS_REGION:-us-east-1}

# Needs AWS credentials (`aws sts get-caller-identity`) and a region (AWS_REGION or a profile).
deploy: package $(SAM_STAMP)
	$(SAM) deploy --template-file build/package/sam.json --stack-name $(STACK) \
	  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --resolve-s3 \
	  --no-fail-on-empty-changeset --tags app=automation-runs stage=$(STAGE) \
	  --parameter-overrides Stage=$(STAGE) $(PARAMETERS)
	$(PY) infra/stack.py first-token $(STACK)
	$(PY) infra/stack.py show $(STACK)

destroy: $(STAMP) $(SAM_STAMP)
	$(PY) infra/stack.py show $(STACK)
	$(SAM) delete --stack-name $(STACK) --no-prompts
	$(PY) infra/stack.py forget $(STACK)

bench: $(STAMP)
	$(PY) -m bench.cost
	$(PY) -m bench.api_cost
	$(PY) -m bench.sqlite_store
	$(PY) -m bench.local_stack

# The fault soak: thousands of runs under crashes, duplicates, throttling and lost answers
# (SOAK_ARGS, e.g. --seeds 50 --runs-per-seed 200); prints its figures.
SOAK_ARGS ?=
soak: $(STAMP)
	$(PY) -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) build .pytest_cache $(PACKAGED_AUTOMATIONS)
