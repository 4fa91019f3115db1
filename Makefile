# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench serve lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[sandbox,test]'
	@touch $(STAMP)

demo: $(STAMP)            ## the main job: the offline demo (or the real bot once Slack tokens are set)
	$(VENV)/bin/ecs-exec-bot demo

serve: $(STAMP)           ## the real bot (needs SLACK_* settings)
	$(VENV)/bin/ecs-exec-bot serve

test: $(STAMP)            ## the whole test suite; pytest's "no tests collected" (exit 5) is a failure
	$(PY) -m pytest

bench: $(STAMP)           ## benchmarks, printing figures
	$(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check bot handlers tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
