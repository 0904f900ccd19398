# Each command works on a fresh machine: the first use creates .venv and installs into it.
#   make demo   the main job: test example_repo's notebooks and promote them to its local store
#   make test   lint, type-check and run the project's test suite
#   make quick  the inner loop while editing: the tests that start no Jupyter kernel (under a minute)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test quick lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[s3,jupytext]' --group dev  # dependency groups: pip >= 25.1
	touch $(STAMP)

demo: $(STAMP)
	cd example_repo && ../$(BIN)/python -m pytest -n 2 -p no:cacheprovider
	@echo "executed notebooks and results.json are in example_repo/notebook-outputs/"
	cd example_repo && ../$(BIN)/nbpromote promote || [ $$? -eq 3 ]  # 3: nothing to do
	cd example_repo && ../$(BIN)/nbpromote status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n 2

quick: $(STAMP)
	$(BIN)/python -m pytest -m "not kernel and not race" -n 2 -q

clean:
	rm -rf $(VENV) example_repo/notebook-outputs example_repo/promoted-templates .pytest_cache .mypy_cache .ruff_cache
