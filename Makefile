# Two commands for a new user:
#   make lab    set everything up (once) and open the course in JupyterLab
#   make test   set everything up (once) and run every test and every lesson
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sdlearn-installed

.PHONY: setup lab test test-fast bench clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name sdlearn --display-name "Python (sdlearn)"
	touch $(STAMP)

# JupyterLab refuses to run as root unless told; containers often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

# pytest for the library, nbval for every lesson (each cell must run; asserts are the checks).
test: export HF_HUB_OFFLINE=1
test: setup
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env

test-fast: setup
	$(PY) -m pytest tests

bench: setup
	$(PY) scripts/bench_data.py

clean-venv:
	rm -rf $(VENV)
