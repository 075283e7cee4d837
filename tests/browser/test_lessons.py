"""Lessons in a real JupyterLab: run every cell in Chromium, move a slider, and see the picture change.

nbval checks the kernel side; only a browser shows whether the widgets render and redraw.
"""
import pytest

from browser_helpers import TOKEN, images_near, screenshot, set_slider, wait_for_new_image

RUN_ALL_DONE = """() => {
  const app = window.jupyterapp; const panel = app && app.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext || !panel.sessionContext.session) return false;
  const kernel = panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  return kernel && kernel.status === 'idle' && cells.length > 0 && cells.every(c => c.model.executionCount !== null);
}"""

ERRORS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code')
  .flatMap(c => c.model.outputs.toJSON())
  .filter(o => o.output_type === 'error')
  .map(o => o.ename + ': ' + o.evalue)"""


def run_lesson(page, lab, name: str):
    page.goto(f"{lab.url}/lab/tree/{name}?token={TOKEN}", timeout=120_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.isReady", timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(RUN_ALL_DONE, timeout=240_000, polling=1000)
    assert page.evaluate(ERRORS) == [], lab.log()


@pytest.mark.parametrize("lesson, label, value", [
    ("08_text_to_image_by_hand.ipynb", "step", 0),  # the step scrubber: step 1 is mostly noise
    ("01_forward_diffusion.ipynb", "t", 500),        # interact() over the noising timestep
])
def test_lesson_slider_redraws_the_picture(page, lab, lesson, label, value):
    run_lesson(page, lab, lesson)
    slider = page.locator(".widget-slider").filter(has=page.get_by_text(label, exact=True)).first
    slider.scroll_into_view_if_needed()
    before = images_near(page, slider)
    assert before, "the widget shows no picture"
    screenshot(page, f"{lesson[:2]}_before")
    set_slider(page, slider, value)
    after = wait_for_new_image(page, slider, before)
    assert after != before
    screenshot(page, f"{lesson[:2]}_after")
