# The project's commands. `make setup` is idempotent and runs before everything that needs it.
SHELL := /bin/bash
RUN := scripts/with_env.sh

.PHONY: setup test lint format demo bench clean

setup:
	@bash scripts/setup.sh

test: setup
	$(RUN) python -m pytest $(PYTEST_ARGS)

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format: setup
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

demo: setup
	@bash scripts/demo.sh

bench: setup
	$(RUN) python benchmarks/rt1_inference.py

clean:
	rm -rf build install log
