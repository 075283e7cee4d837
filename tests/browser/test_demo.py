"""The classroom demo (`make demo`) in a real browser: type a prompt, generate, scrub; bad input gets a message."""
import math

from browser_helpers import images_near, screenshot, set_slider, wait_for_new_image


def open_app(page, voila):
    # Voila runs the whole demo notebook (loading TinySD) before the page's load event; on a busy CI
    # machine that takes longer than Playwright's 30 s default, so wait for the response only.
    page.goto(voila.url, wait_until="commit", timeout=180_000)
    page.wait_for_selector(".sdlearn-app", timeout=180_000)


def prompt_box(page):
    return page.locator(".sdlearn-app .widget-text").filter(has=page.get_by_text("prompt", exact=True)).locator("input")


def generate(page):
    page.locator(".sdlearn-app button", has_text="Generate").click()


def test_demo_generates_and_the_scrubber_changes_the_picture(page, voila):
    open_app(page, voila)
    prompt_box(page).fill("a blue square at the top")
    generate(page)
    page.wait_for_selector(".sdlearn-message:has-text('Done')", timeout=180_000)
    slider = page.locator(".sdlearn-app .widget-slider").filter(has=page.get_by_text("step", exact=True)).first
    slider.scroll_into_view_if_needed()
    before = images_near(page, slider)
    assert before, "no picture after Generate"
    screenshot(page, "demo_generated")
    set_slider(page, slider, 0)
    after = wait_for_new_image(page, slider, before)
    assert after != before
    screenshot(page, "demo_scrubbed")


def test_demo_bad_input_shows_a_message_not_a_traceback(page, voila):
    open_app(page, voila)
    prompt_box(page).fill("   ")
    generate(page)
    message = page.locator(".sdlearn-message")
    message.wait_for(timeout=30_000)
    assert "Type a prompt" in message.inner_text()
    seed = page.locator(".sdlearn-app .widget-text").filter(has=page.get_by_text("seed", exact=True)).locator("input")
    prompt_box(page).fill("a red circle")
    seed.fill("-5")
    seed.press("Enter")
    generate(page)
    page.wait_for_selector(".sdlearn-message:has-text('seed must be')", timeout=30_000)
    screenshot(page, "demo_bad_input")
    assert "Traceback" not in page.inner_text("body")


def test_demo_inpainting_mode(page, voila):
    open_app(page, voila)
    page.locator(".sdlearn-app .widget-toggle-buttons button", has_text="inpainting").click()
    page.locator(".sdlearn-app select:visible").first.wait_for()  # the input picture's menu
    prompt_box(page).fill("a yellow triangle on the left")
    generate(page)
    page.wait_for_selector(".sdlearn-message:has-text('Done')", timeout=180_000)
    screenshot(page, "demo_inpainting")
    assert "Traceback" not in page.inner_text("body")


def controlnet_picture(page):
    """Generate "a red circle" from the outline chosen and check the step scrubber shows a picture."""
    prompt_box(page).fill("a red circle")
    generate(page)
    page.wait_for_selector(".sdlearn-message:has-text('Done')", timeout=180_000)
    slider = page.locator(".sdlearn-app .widget-slider").filter(has=page.get_by_text("step", exact=True)).first
    slider.scroll_into_view_if_needed()
    assert images_near(page, slider), "no picture after Generate"


def test_demo_controlnet_mode(page, voila):
    open_app(page, voila)
    page.locator(".sdlearn-app .widget-toggle-buttons button", has_text="ControlNet").click()
    page.locator(".sdlearn-app .widget-dropdown").filter(has=page.get_by_text("outline", exact=True)).wait_for()
    page.locator(".sdlearn-app .widget-upload").wait_for()  # the upload button shows in this mode
    controlnet_picture(page)
    screenshot(page, "demo_controlnet")
    assert "Traceback" not in page.inner_text("body")


def test_demo_controlnet_sketch_pad(page, voila):
    open_app(page, voila)
    page.locator(".sdlearn-app .widget-toggle-buttons button", has_text="ControlNet").click()
    menu = page.locator(".sdlearn-app .widget-dropdown").filter(has=page.get_by_text("outline", exact=True)).locator("select")
    menu.select_option(label="draw your own (on the pad below)")
    pad = page.locator(".sdlearn-sketchpad").first
    pad.wait_for(state="visible")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] / 4
    page.mouse.move(cx + r, cy)  # a circle, drawn with the mouse as a teacher would
    page.mouse.down()
    for k in range(1, 41):
        page.mouse.move(cx + r * math.cos(k * math.pi / 20), cy + r * math.sin(k * math.pi / 20))
    page.mouse.up()
    page.wait_for_selector(".sdlearn-app :text('line segments')", timeout=30_000)  # the kernel got the strokes
    lit, alpha = pad.evaluate("""c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] > 200; return [n, d[3]]; }""")
    assert lit > 200 and alpha == 255, (lit, alpha)  # the strokes show, white on an opaque black pad
    controlnet_picture(page)
    pad.scroll_into_view_if_needed()
    screenshot(page, "demo_controlnet_sketch_pad")
    assert "Traceback" not in page.inner_text("body")


def test_demo_addon_is_shown_without_and_with(page, voila):
    open_app(page, voila)
    menu = page.locator(".sdlearn-app .widget-dropdown").filter(has=page.get_by_text("add-on", exact=True)).locator("select")
    menu.select_option(label="LoRA: wide shapes (lesson 16)")
    page.wait_for_function("() => [...document.querySelectorAll('.sdlearn-app input')].some(i => i.value.includes('wide'))")
    assert "wide" in prompt_box(page).input_value()  # choosing an add-on fills in a prompt that shows it
    generate(page)
    page.wait_for_selector(".sdlearn-message:has-text('Done')", timeout=180_000)
    page.wait_for_function("() => document.querySelectorAll('.sdlearn-app img').length >= 2", timeout=60_000)
    screenshot(page, "demo_addon")  # the pair without / with the add-on above the step scrubber
    assert "Traceback" not in page.inner_text("body")
