# Two commands for a new user:
#   make lab    set everything up (once) and open the course in JupyterLab
#   make test   set everything up (once) and run every test, every lesson and the browser tests
# and for teachers:
#   make demo   the classroom demo app (Voila) on http://localhost:8866
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sdlearn-installed

.PHONY: setup lab demo test test-fast browser figures bench site clean-venv

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

demo: setup
	$(VENV)/bin/voila demo/classroom.ipynb --port=8866 --Voila.ip=127.0.0.1

# pytest for the library and the browser tests (tests/browser: JupyterLab and Voila in headless
# Chromium), nbval for every lesson (each cell must run; asserts are the checks).
# The lessons' outputs from this run are kept in build/executed/ (notebooks/conftest.py), the course site is
# rendered from them (no second run of the lessons), and a browser test opens the site.
test: export HF_HUB_OFFLINE=1
test: setup
	rm -rf build/executed
	SDLEARN_EXECUTED_DIR=build/executed $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env --ignore=tests/browser/test_site.py
	$(PY) scripts/build_site.py
	$(PY) -m pytest tests/browser/test_site.py

# The course as a static HTML site in site/ (open site/index.html). Uses make test's executed lessons when they
# match the lessons' code, and runs the others.
site: export HF_HUB_OFFLINE=1
site: setup
	$(PY) scripts/build_site.py

# The browser for tests/browser: Debian's chromium when we may install it (root, apt),
# otherwise Playwright's own download (needs the internet).
browser:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: /usr/bin/chromium"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else $(PY) -m playwright install chromium; fi

figures: export HF_HUB_OFFLINE=1
figures: setup
	$(PY) scripts/make_figures.py

test-fast: setup
	$(PY) -m pytest tests -m "not lessons"

bench: setup
	$(PY) scripts/bench_data.py

clean-venv:
	rm -rf $(VENV)
