"""Browser tests: a real JupyterLab or Voila server on loopback, driven by headless Chromium via Playwright.

The browser is Debian's `chromium` (/usr/bin/chromium) or Playwright's own build
(`python -m playwright install chromium`); set SDLEARN_CHROMIUM to use another binary. Without a
browser these tests skip, except under CI (CI=true), where a missing browser is a failure.
Screenshots go to test-artifacts/.
"""
import os
import shutil
import sys

import pytest
from browser_helpers import ROOT, TOKEN, Server, find_chromium, free_port


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = find_chromium()
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Exception as e:  # no Debian chromium and no Playwright browser
            if os.environ.get("CI"):
                raise
            pytest.skip(f"no Chromium for the browser tests ({e.__class__.__name__}); install Debian's chromium "
                        "or run `python -m playwright install chromium`")
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on loopback serving a copy of notebooks/ (autosave must not write outputs into the repo),
    with the app object exposed for scripted commands."""
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    port = free_port()
    server = Server([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                     f"--ServerApp.token={TOKEN}", "--allow-root", f"--notebook-dir={tmp_path / 'notebooks'}",
                     "--LabApp.expose_app_in_browser=True"],
                    port, tmp_path, ready_path=f"/api/status?token={TOKEN}")
    yield server
    server.stop()


@pytest.fixture
def voila(tmp_path):
    port = free_port()
    server = Server([sys.executable, "-m", "voila", "demo/classroom.ipynb", "--no-browser", f"--port={port}",
                     "--Voila.ip=127.0.0.1"], port, tmp_path)
    yield server
    server.stop()
