"""Helpers for the browser tests: find Chromium, run a Jupyter-family server, read and move widgets."""
from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "sdlearn-test"


def find_chromium() -> str | None:
    """A Chromium binary, or None to let Playwright use the browser it installed itself."""
    for candidate in (os.environ.get("SDLEARN_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A Jupyter-family server started as a subprocess, stopped at teardown, its log kept for failures."""

    def __init__(self, args: list[str], port: int, tmp: pathlib.Path, ready_path: str | None = None,
                 timeout: float = 120):
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self.log_path = tmp / "server.log"
        env = dict(os.environ, HF_HUB_OFFLINE="1", JUPYTER_CONFIG_DIR=str(tmp / "config"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"))
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if ready_path is None:  # just listening (Voila starts a kernel per page request)
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                else:
                    urllib.request.urlopen(self.url + ready_path, timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def screenshot(page, name: str):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def images_near(page, slider):
    """The src of every <img> in the widget box around `slider` (the step scrubber's VBox)."""
    return slider.evaluate(
        "el => Array.from((el.closest('.widget-vbox') || el.closest('.jp-OutputArea-output')).querySelectorAll('img'))"
        ".map(i => i.src)")


def set_slider(page, slider, value: int):
    """Type a value into an ipywidgets slider's readout and press Enter, as a user can."""
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Enter")


def wait_for_new_image(page, slider, before, timeout_ms: int = 60_000):
    """Wait until the images beside `slider` differ from `before`; return them."""
    page.wait_for_function(
        "([el, before]) => { const box = el.closest('.widget-vbox') || el.closest('.jp-OutputArea-output');"
        " const now = Array.from(box.querySelectorAll('img')).map(i => i.src);"
        " return now.length > 0 && JSON.stringify(now) !== JSON.stringify(before); }",
        arg=[slider.element_handle(), before], timeout=timeout_ms)
    return images_near(page, slider)
