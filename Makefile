# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run demo test bench serve lint types clean

# The bot, its test tools, and the stand-ins (stand-ins/: local AWS, agent, Slack and the demo), which
# neither `pip install .` nor the Docker image carry.
$(STAMP): pyproject.toml stand-ins/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -e ./stand-ins
	@touch $(STAMP)

run: $(STAMP)             ## the main job: the real bot once SLACK_BOT_TOKEN is set (env or .env), else the offline demo
	@if [ -n "$$SLACK_BOT_TOKEN" ] || grep -qs '^SLACK_BOT_TOKEN=.' .env; then \
	  $(VENV)/bin/ecs-exec-bot serve; else $(VENV)/bin/ecs-exec-bot demo; fi

demo: $(STAMP)            ## the offline demo: local ECS, agent and Slack stand-ins with the real bot
	$(VENV)/bin/ecs-exec-bot demo

serve: $(STAMP)           ## the real bot (needs SLACK_* settings)
	$(VENV)/bin/ecs-exec-bot serve

test: lint types          ## lint, types, then the whole test suite; pytest's "no tests collected" (exit 5) is a failure
	$(PY) -m pytest -n 4

bench: $(STAMP)           ## benchmarks, printing figures
	$(PY) -m benchmarks

lint: $(STAMP)            ## ruff on everything
	$(VENV)/bin/ruff check bot handlers stand-ins tests benchmarks

types: $(STAMP)           ## mypy on bot/ and handlers/ (configured in pyproject.toml)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info
