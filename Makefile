# The two commands a newcomer needs: `make demo` and `make test`. Each sets up .venv
# itself (created if missing, the project installed into it), so a fresh clone needs
# nothing installed by hand beyond Python 3.11+.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test e2e lint bench images clean

# setuptools says "Editable installation. Please be careful with folders in your working
# directory with the same name as your package" on every editable install that maps a
# folder to another name (delegates/ installs as bakeplan_delegates): information with
# nothing to act on, so the install below stays silent.
# The set-up speaks on stderr only, so that `make demo | jq` reads the plan alone.
$(STAMP): pyproject.toml
	@echo "== setting up $(VENV): bakeplan and its test tools" >&2
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --upgrade pip >&2
	@PYTHONWARNINGS='ignore:Editable installation:UserWarning' \
		$(BIN)/python -m pip install --quiet -e '.[dev]' >&2
	@touch $(STAMP)

demo: $(STAMP)
	@echo "== bakeplan plan examples/hybrid/config.json (Mirage owns /net, rumprun the rest)" >&2
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/bakeplan plan examples/hybrid/config.json \
		-r examples/hybrid/registry.json

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The real consumers of bakeplan's outputs: rumprun-bake links what the plan says and
# QEMU boots it (e2e/README.md). e2e/setup.sh installs what is missing, as root.
e2e: $(STAMP)
	bash e2e/setup.sh
	$(BIN)/python -m pytest e2e -q

lint: $(STAMP)
	$(BIN)/python -m ruff check orchestrator delegates tests e2e
	$(BIN)/python -m ruff format --check orchestrator delegates tests e2e
	$(BIN)/python -m mypy

# Speed targets as ratios against baselines measured in the same run (needs jq).
bench: $(STAMP)
	$(BIN)/python tests/bench/bench.py

# The README's pictures of the hybrid example; needs Graphviz's dot (apt-get install graphviz).
images: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/bakeplan graph examples/hybrid/config.json \
		-r examples/hybrid/registry.json | dot -Tsvg -o docs/hybrid-graph.svg
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python docs/record_preview.py \
		examples/hybrid/config.json examples/hybrid/registry.json docs/dry-run.svg

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
