"""The course site (`make site`): the index lists every lesson, its links open the lesson pages, and the pages
show their figures (images that really loaded, not broken links) and their formulas (MathJax from the site's own
folder: this machine has no network, so a CDN script would leave the TeX source on the page)."""
import pathlib
import subprocess
import sys

import pytest
from browser_helpers import ARTIFACTS, ROOT

SITE = ROOT / "site"
LESSONS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))


@pytest.fixture(scope="module")
def site():
    if not (SITE / "index.html").exists():  # make test builds it first; otherwise build it now
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_site.py")], check=True, cwd=ROOT)
    return SITE


def loaded_images(page) -> tuple[int, int]:
    """(images on the page, images that loaded with a real size)."""
    return page.evaluate("""() => {
        const imgs = Array.from(document.images);
        return [imgs.length, imgs.filter(i => i.complete && i.naturalWidth > 0).length];
    }""")


def test_index_lists_every_lesson_and_its_figures_load(site, page):
    page.goto((site / "index.html").as_uri())
    hrefs = page.eval_on_selector_all("a", "els => els.map(e => e.getAttribute('href'))")
    for lesson in LESSONS:
        assert f"{lesson}.html" in hrefs, f"the index does not link {lesson}"
    total, ok = loaded_images(page)
    assert total >= 5 and ok == total, (total, ok)
    page.screenshot(path=str(ARTIFACTS / "site-index.png"), full_page=False)


def test_a_lesson_link_opens_the_lesson_with_its_figures(site, page):
    page.goto((site / "index.html").as_uri())
    page.click("a[href='01_forward_diffusion.html']")
    page.wait_for_load_state()
    assert page.url.endswith("01_forward_diffusion.html")
    assert "Forward" in page.inner_text("h1")
    total, ok = loaded_images(page)
    assert total >= 3 and ok == total, (total, ok)  # the lesson's plots, embedded by nbconvert
    assert "Traceback" not in page.inner_text("body")
    page.wait_for_selector(".MathJax, .MathJax_Display, .MathJax_SVG", state="attached", timeout=30_000)
    typeset = page.evaluate("() => document.querySelectorAll('script[type^=\"math/tex\"]').length")
    assert typeset >= 5, f"only {typeset} formulas typeset by MathJax"
    page.screenshot(path=str(ARTIFACTS / "site-lesson-01.png"), full_page=False)


def test_solution_pages_find_mathjax_one_folder_down(site, page):
    page.goto((site / "solutions" / "01_forward_diffusion_solutions.html").as_uri())
    page.wait_for_function("() => window.MathJax !== undefined && window.MathJax.Hub !== undefined", timeout=30_000)
