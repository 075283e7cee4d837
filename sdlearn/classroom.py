"""The classroom demo: one ipywidgets app over the sdlearn pipelines, served by Voila.

    make demo              # serves demo/classroom.ipynb with Voila on http://localhost:8866

A teacher types a prompt, sets steps, guidance and seed, clicks Generate and then scrubs through
the denoising steps, with the attention map of a chosen word. The same app runs image-to-image
on bundled sketches and photos, inpainting on procedural scenes, and a ControlNet on a bundled, uploaded or
hand-drawn outline (or the edges of an uploaded picture; the sketch pad is an ipycanvas canvas). In
text-to-image mode an add-on from the customising lessons (a textual-inversion embedding, a LoRA, a DreamBooth
LoRA) can be switched on; the app then shows the same prompt and seed without and with it. Bad input (an empty
prompt, a seed out of range, an outline of the wrong size) shows a message in the app instead of a traceback.
"""
from __future__ import annotations

import copy
import html
import io
import os
import pathlib
from dataclasses import dataclass

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import torch
from ipycanvas import Canvas
from IPython.display import display
from PIL import Image, ImageDraw

from . import pipelines
from .controlnet import controlnet_to_image
from .data import load_photo, make_scene, render_outline, render_sketch
from .edges import canny_edges, edge_condition
from .finetune import load_embedding, load_lora
from .loading import SHIPPED, ModelNotAvailableError, load, load_controlnet, load_vae
from .schedulers import swap_scheduler
from .widgets import step_scrubber

__all__ = ["SOURCES", "MASKS", "OUTLINES", "DRAW", "SketchPad", "Addon", "SHIPPED_ADDONS", "with_addon", "ClassroomApp",
           "build_app"]

MODES = ("text to image", "image to image", "inpainting", "ControlNet")


def _sketch(colour, shape, position="center"):
    return lambda size: render_sketch(make_scene(colour, shape, position=position, size_px=size), seed=1)


def _scene(colour, shape, second_colour, second_shape):
    return lambda size: make_scene(colour, shape, second={"colour": second_colour, "shape": second_shape, "depth": 0.4},
                                   relation="left of", size_px=size).image


# Input images for image-to-image and inpainting: name -> function(size) -> uint8 (size, size, 3).
SOURCES = {
    "sketch: red circle": _sketch("red", "circle"),
    "sketch: blue square on the left": _sketch("blue", "square", "left"),
    "sketch: yellow triangle": _sketch("yellow", "triangle"),
    "scene: red circle left of a blue square": _scene("red", "circle", "blue", "square"),
    "scene: yellow triangle left of a green circle": _scene("yellow", "triangle", "green", "circle"),
    "photo: chelsea the cat": lambda size: load_photo("chelsea", size),
    "photo: astronaut": lambda size: load_photo("astronaut", size),
    "photo: coffee": lambda size: load_photo("coffee", size),
}


def _region_mask(region: str):
    """A function size -> (size, size) uint8 mask, 255 inside `region`: "left half", "right half" or "centre square"."""
    def mask(size):
        m = np.zeros((size, size), np.uint8)
        if region == "left half":
            m[:, : size // 2] = 255
        elif region == "right half":
            m[:, size // 2 :] = 255
        else:
            m[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
        return m

    return mask


def _drawn(colour, shape, second=None):
    def outline(size):
        extra = dict(second={"colour": "blue", "shape": second, "depth": 0.4}, relation="left of") if second else {}
        return render_outline(make_scene(colour, shape, size_px=size, **extra), seed=2)

    return outline


def _edges(make):
    return lambda size: edge_condition(canny_edges(make(size)))


# Outlines for the ControlNet (white lines on black): name -> function(size) -> uint8 (size, size, 3).
OUTLINES = {
    "drawn: a circle": _drawn("red", "circle"),
    "drawn: a triangle": _drawn("red", "triangle"),
    "drawn: a circle left of a square": _drawn("red", "circle", "square"),
    "edges: scene, red circle left of a blue square": _edges(SOURCES["scene: red circle left of a blue square"]),
    "edges: photo, chelsea the cat": lambda size: edge_condition(canny_edges(load_photo("chelsea", size), sigma=1.5)),
}


# The outline menu's last entry: the sketch pad below the menu.
DRAW = "draw your own (on the pad below)"


class SketchPad:
    """Draw an outline with the mouse: white strokes on black, for the ControlNet.

    The canvas only shows the strokes. The kernel keeps them as line segments and draws them again with PIL at the
    model's size and a line width like the training outlines' (1.5 px at 64 px), so what the ControlNet gets does
    not depend on the browser, and a test can draw without one.
    """

    DISPLAY = 256  # the canvas's side in screen pixels

    def __init__(self, size: int, on_stroke=None):
        self.size, self.on_stroke = size, None
        self.segments: list[tuple[float, float, float, float]] = []  # (x0, y0, x1, y1) in canvas pixels
        self._pen = None
        d = self.DISPLAY
        self.canvas = Canvas(width=d, height=d, layout=w.Layout(width=f"{d}px", height=f"{d}px"))
        self.canvas.add_class("sdlearn-sketchpad")
        self.canvas.on_mouse_down(self.pen_down)
        self.canvas.on_mouse_move(self.pen_move)
        self.canvas.on_mouse_up(self.pen_up)
        self.canvas.on_mouse_out(self.pen_up)
        self.clear_button = w.Button(description="clear the pad", icon="eraser")
        self.clear_button.on_click(lambda _: self.clear())
        self.count = w.HTML()
        self.view = w.VBox([w.HTML("Draw an outline with the mouse (white on black); it is used at the model's "
                                   f"size, {size}x{size}, shown below."),
                            self.canvas, w.HBox([self.clear_button, self.count])])
        self.clear()
        self.on_stroke = on_stroke  # called after each stroke and each clearing

    def pen_down(self, x: float, y: float):
        self._pen = (x, y)

    def pen_move(self, x: float, y: float):
        if self._pen is None:
            return
        x0, y0 = self._pen
        self.canvas.stroke_line(x0, y0, x, y)  # white, round-capped: set once by redraw()
        self.segments.append((x0, y0, x, y))
        self._pen = (x, y)

    def pen_up(self, x: float, y: float):
        if self._pen is None:
            return
        if not self.segments or self.segments[-1][2:] != self._pen:  # a click without a move: a dot
            self.segments.append((*self._pen, *self._pen))
            self.canvas.stroke_line(*self._pen, *self._pen)  # a round cap on a zero-length line
        self._pen = None
        self.count.value = f"{len(self.segments)} line segments"
        if self.on_stroke is not None:
            self.on_stroke()

    def clear(self):
        self.segments, self._pen = [], None
        self.redraw()
        self.count.value = "empty"
        if self.on_stroke is not None:
            self.on_stroke()

    def redraw(self):
        """Paint the pad again from the kept strokes. A canvas drops what was drawn before the browser showed it,
        so the app calls this when the pad is shown."""
        # ipycanvas tells the browser which canvas its commands are for only when the target changes. Under Voila
        # the notebook runs before the page is open, so that first message is lost and the browser drops every
        # later command ("currentCanvas is undefined"). Forgetting the target makes the next command name it again.
        self.canvas._canvas_manager._current_canvas = None
        self.canvas.line_width = 1.5 * self.DISPLAY / 64  # the training outlines' width, scaled to the pad
        self.canvas.line_cap = "round"
        self.canvas.fill_style = "black"
        self.canvas.fill_rect(0, 0, self.DISPLAY, self.DISPLAY)
        self.canvas.stroke_style = "white"
        for x0, y0, x1, y1 in self.segments:
            self.canvas.stroke_line(x0, y0, x1, y1)

    def image(self) -> np.ndarray:
        """The strokes at the model's size: uint8 (size, size, 3), white lines on black."""
        if not self.segments:
            raise ValueError("The sketch pad is empty: draw an outline on it with the mouse, or pick a bundled "
                             "outline from the menu.")
        k = self.size / self.DISPLAY
        width = max(1, round(1.5 * self.size / 64))
        picture = Image.new("L", (self.size, self.size), 0)
        draw = ImageDraw.Draw(picture)
        for x0, y0, x1, y1 in self.segments:
            draw.line([(x0 * k, y0 * k), (x1 * k, y1 * k)], fill=255, width=width, joint="curve")
            r = (width - 1) / 2  # a round end as wide as the line, so strokes join without gaps
            draw.ellipse([x1 * k - r, y1 * k - r, x1 * k + r, y1 * k + r], fill=255)
        return np.repeat(np.asarray(picture)[..., None], 3, axis=2)


# Masks for inpainting (white = repaint).
MASKS = {region: _region_mask(region) for region in ("left half", "right half", "centre square")}

LIMITS = {"steps": (1, 50), "guidance": (0.0, 15.0), "strength": (0.0, 1.0), "seed": (0, 2**31 - 1),
          "control scale": (0.0, 2.0)}


@dataclass(frozen=True)
class Addon:
    """A customising file the demo can switch on: kind "embedding" or "lora", its path, a prompt that shows it,
    and optionally a VAE to paint with (DreamBooth's badge needs the fine-tuned decoder)."""

    kind: str
    path: pathlib.Path
    prompt: str
    vae: str | None = None


_ADDONS = SHIPPED["tinysd"].parent / "addons"
# The files `scripts/make_addons.py` trains for TinySD (lessons 15, 16 and 18).
SHIPPED_ADDONS = {
    "embedding <thing> (lesson 15)": Addon("embedding", _ADDONS / "thing.safetensors", "a <thing>"),
    "LoRA: wide shapes (lesson 16)": Addon("lora", _ADDONS / "wide-lora", "a wide red circle"),
    "DreamBooth: the sks badge (lesson 18)": Addon("lora", _ADDONS / "badge-dreambooth", "a sks circle",
                                                   vae="tinysd-vae-ft"),
}
NO_ADDON = "none"


def with_addon(parts, addon: Addon):
    """A copy of `parts` with the add-on loaded (the parts it changes are copied; `parts` stays as it was)."""
    changed = copy.copy(parts)
    if addon.kind == "embedding":
        changed.tokenizer = copy.deepcopy(parts.tokenizer)
        changed.text_encoder = copy.deepcopy(parts.text_encoder)
        load_embedding(changed, addon.path)
    elif addon.kind == "lora":
        changed.unet = copy.deepcopy(parts.unet)
        load_lora(changed.unet, addon.path)
    else:
        raise ValueError(f"unknown add-on kind {addon.kind!r}; use 'embedding' or 'lora'.")
    if addon.vae:
        changed.vae = load_vae(addon.vae)
    return changed


def _prompt_words(parts, prompt: str) -> list[str]:
    """The prompt's tokens as the attention chooser shows them (no start/end tokens, no `</w>`)."""
    ids = parts.tokenizer(prompt, truncation=True, max_length=parts.tokenizer.model_max_length).input_ids
    return [t.replace("</w>", "") for t in parts.tokenizer.convert_ids_to_tokens(ids)[1:-1]]


class ClassroomApp:
    """The widgets and what the Generate button does. `build_app()` returns `.view`."""

    def __init__(self, parts=None, inpaint_parts=None, addons: dict[str, Addon] | None = None, controlnet=None):
        self.parts = parts if parts is not None else swap_scheduler(load(), "ddim")
        self.controlnet = controlnet  # loaded on first use: TinySD's, or $SDLEARN_CONTROLNET's
        if addons is None:  # the shipped files fit TinySD only
            addons = {k: a for k, a in SHIPPED_ADDONS.items() if a.path.exists()} if self.parts.is_tinysd else {}
        self.addons = addons
        self._addon_parts = {}
        self.inpaint_parts = inpaint_parts
        if self.inpaint_parts is None and self.parts.is_tinysd:
            try:  # the 9-channel model when it ships; otherwise inpainting blends with the plain model
                self.inpaint_parts = swap_scheduler(load("tinysd-inpaint"), "ddim")
            except ModelNotAvailableError:
                self.inpaint_parts = None
        self.size = self.parts.unet.config.sample_size * self.parts.vae_scale_factor
        wide = lambda: w.Layout(width="420px")  # noqa: E731 - one Layout per widget: hiding one must not hide others
        style = {"description_width": "90px"}
        self.mode = w.ToggleButtons(options=MODES, value=MODES[0], description="mode", style=style)
        self.prompt = w.Text(value="a red circle on the left", placeholder="e.g. a blue square at the top",
                             description="prompt", layout=wide(), style=style)
        self.steps = w.IntSlider(value=min(self.parts.recommended_steps, LIMITS["steps"][1]), min=1, max=LIMITS["steps"][1], description="steps", style=style)
        self.guidance = w.FloatSlider(value=self.parts.recommended_guidance, min=0.0, max=LIMITS["guidance"][1], step=0.5, description="guidance",
                                      style=style)
        self.seed = w.IntText(value=0, description="seed", style=style)
        self.source = w.Dropdown(options=list(SOURCES), description="input", layout=wide(), style=style)
        self.strength = w.FloatSlider(value=0.7, min=0.0, max=1.0, step=0.05, description="strength", style=style)
        self.mask = w.Dropdown(options=list(MASKS), description="mask", style=style)
        self.paste_back = w.Checkbox(value=False, description="paste the input back outside the mask",
                                     indent=False)
        self.outline = w.Dropdown(options=list(OUTLINES) + [DRAW], description="outline", layout=wide(), style=style)
        self.pad = SketchPad(self.size, on_stroke=self._show_input)
        self.pad.view.layout.display = "none"  # shown when the outline menu picks it
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="upload an outline")
        self.use_edges = w.Checkbox(value=False, indent=False, layout=w.Layout(width="auto"),
                                    description="the upload is a picture: use its edges (resized to the model's size)")
        self.control_scale = w.FloatSlider(value=1.0, min=0.0, max=LIMITS["control scale"][1], step=0.1,
                                           description="control scale", style=style)
        self.control_controls = w.VBox([self.outline, self.pad.view, w.HBox([self.upload, self.use_edges]),
                                        self.control_scale])
        self.addon = w.Dropdown(options=[NO_ADDON] + list(self.addons), value=NO_ADDON, description="add-on",
                                layout=wide(), style=style)
        self.addon.observe(self._pick_addon, names="value")
        self.comparison = w.Output()
        self.button = w.Button(description="Generate", button_style="primary", icon="play")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="progress", style=style)
        self.message = w.HTML(value="")
        self.preview = w.Output()
        self.result = w.Output()
        self.mode.observe(self._show_controls, names="value")
        self.source.observe(self._show_input, names="value")
        self.mask.observe(self._show_input, names="value")
        self.outline.observe(self._forget_upload, names="value")
        self.upload.observe(self._show_input, names="value")
        self.use_edges.observe(self._show_input, names="value")
        self.button.on_click(lambda _: self.generate())
        self.image_controls = w.VBox([self.source, self.strength])
        self.view = w.VBox([
            w.HTML("<h2>sdlearn classroom demo</h2><p>Type a prompt, press <b>Generate</b>, then move the "
                   "<b>step</b> slider to watch the picture emerge from noise.</p>"),
            self.mode, self.prompt, w.HBox([self.steps, self.guidance]), self.seed, self.image_controls, self.mask,
            self.paste_back, self.control_controls, self.addon,
            w.HBox([self.button, self.progress]), self.message, self.preview, self.comparison, self.result,
        ])
        self.view.add_class("sdlearn-app")
        self._show_controls()

    # ------------------------------------------------------------ controls

    def _pick_addon(self, *_):
        if self.addon.value != NO_ADDON:
            self.prompt.value = self.addons[self.addon.value].prompt

    def _show_controls(self, *_):
        mode = self.mode.value
        self.addon.layout.display = None if mode == "text to image" and self.addons else "none"
        self.image_controls.layout.display = None if mode in ("image to image", "inpainting") else "none"
        self.control_controls.layout.display = None if mode == "ControlNet" else "none"
        self.mask.layout.display = None if mode == "inpainting" else "none"
        self.paste_back.layout.display = self.mask.layout.display
        if mode == "inpainting":
            self.strength.value = 1.0
        self._show_input()

    def _show_input(self, *_):
        self.preview.clear_output()
        if self.mode.value == "text to image":
            return
        if self.mode.value == "ControlNet":
            if self.outline.value == DRAW and not self.pad.segments and not self.upload.value:
                return  # nothing drawn yet: nothing to show, and nothing wrong
            try:
                image = self.outline_image()
            except ValueError as e:
                self._say(html.escape(str(e)), error=True)
                return
            panels = [(image, "outline")]
        else:
            panels = [(SOURCES[self.source.value](self.size), "input")]
        if self.mode.value == "inpainting":
            panels.append((MASKS[self.mask.value](self.size), "mask (white = repaint)"))
        fig, axes = plt.subplots(1, len(panels), figsize=(2.0 * len(panels), 2.2), squeeze=False)
        for ax, (im, title) in zip(axes[0], panels):
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
        with self.preview:
            display(fig)
        plt.close(fig)

    def _forget_upload(self, *_):
        """Picking a bundled outline (or the pad) replaces an uploaded one; the pad shows only when picked."""
        self.pad.view.layout.display = None if self.outline.value == DRAW else "none"
        if self.outline.value == DRAW:
            self.pad.redraw()
        if self.upload.value:
            self.upload.value = ()
        self._show_input()

    def outline_image(self) -> np.ndarray:
        """The ControlNet's outline: the uploaded file (or its edges), else the pad's or the bundled outline chosen."""
        if not self.upload.value:
            return self.pad.image() if self.outline.value == DRAW else OUTLINES[self.outline.value](self.size)
        item = self.upload.value[0]
        try:
            picture = Image.open(io.BytesIO(bytes(item["content"])))
            picture.load()
        except Exception:  # noqa: BLE001 - any unreadable upload gets the same message
            raise ValueError(f"{html.escape(item['name'])} is not a picture this app can read; upload a PNG or "
                             "JPEG file.") from None
        if self.use_edges.value:
            return edge_condition(canny_edges(np.asarray(picture.convert("RGB").resize((self.size, self.size)))))
        if picture.size != (self.size, self.size):
            raise ValueError(f"The outline is {picture.size[0]}x{picture.size[1]}; this model draws "
                             f"{self.size}x{self.size}. Upload an outline of that size, or tick \"use its edges\".")
        return np.asarray(picture.convert("RGB"))

    def _controlnet(self):
        if self.controlnet is None:
            name = os.environ.get("SDLEARN_CONTROLNET") or ("tinysd-controlnet-edges" if self.parts.is_tinysd else None)
            if name is None:
                raise ValueError("There is no ControlNet for this model; set SDLEARN_CONTROLNET to a ControlNet "
                                 "folder trained for it, or use TinySD.")
            self.controlnet = load_controlnet(name)
        return self.controlnet

    def check(self) -> str | None:
        """A message for the user if the inputs are not usable, else None."""
        prompt = self.prompt.value.strip()
        if not prompt:
            return "Type a prompt first, for example <i>a red circle on the left</i>."
        if len(self.parts.tokenizer(prompt).input_ids) - 2 > self.parts.tokenizer.model_max_length - 2:
            return "The prompt is longer than CLIP's 75 usable tokens; shorten it (lesson 04 shows why)."
        lo, hi = LIMITS["seed"]
        if not lo <= self.seed.value <= hi:
            return f"The seed must be a whole number from {lo} to {hi}."
        for name, widget in (("steps", self.steps), ("guidance", self.guidance), ("strength", self.strength),
                             ("control scale", self.control_scale)):
            lo, hi = LIMITS[name]
            if not lo <= widget.value <= hi:
                return f"{name} must lie between {lo} and {hi}."
        if self.mode.value == "image to image" and self.strength.value == 0:
            return "With strength 0 there is nothing to denoise: the output is the input. Raise the strength."
        return None

    def _say(self, text: str, error: bool = False):
        colour = "#b00020" if error else "#333"
        self.message.value = f'<span class="sdlearn-message" style="color:{colour}">{text}</span>'

    # ------------------------------------------------------------ generate

    def generate(self):
        """Run the chosen pipeline with the controls' values and show the step scrubber."""
        problem = self.check()
        if problem:
            self._say(problem, error=True)
            return None
        prompt = self.prompt.value.strip()
        self.button.disabled = True
        self.progress.value, self.progress.max = 0, self.steps.value
        self._say("Generating...")

        def on_step(i, n):
            self.progress.max, self.progress.value = n, i + 1

        kw = dict(num_inference_steps=self.steps.value, guidance_scale=float(self.guidance.value),
                  generator=torch.Generator().manual_seed(int(self.seed.value)), record=True, record_attention=True,
                  progress=False, on_step=on_step)
        parts = self.parts
        addon = self.addon.value if self.mode.value == "text to image" else NO_ADDON
        try:
            if addon != NO_ADDON:
                if addon not in self._addon_parts:
                    self._addon_parts[addon] = with_addon(self.parts, self.addons[addon])
                parts = self._addon_parts[addon]
            if self.mode.value == "text to image":
                result = pipelines.text_to_image(parts, prompt, **kw)
            elif self.mode.value == "ControlNet":
                result = controlnet_to_image(parts, self._controlnet(), prompt, self.outline_image(),
                                             controlnet_conditioning_scale=float(self.control_scale.value), **kw)
            else:
                image = SOURCES[self.source.value](self.size)
                if self.mode.value == "image to image":
                    result = pipelines.image_to_image(parts, prompt, image, strength=float(self.strength.value), **kw)
                else:
                    parts = self.inpaint_parts or self.parts
                    result = pipelines.inpaint(parts, prompt, image, MASKS[self.mask.value](self.size),
                                               strength=float(self.strength.value),
                                               paste_back=bool(self.paste_back.value), **kw)
        except (ValueError, TypeError, ModelNotAvailableError) as e:  # the input checks say what to change
            self._say(html.escape(str(e)), error=True)
            return None
        except Exception as e:  # never a traceback in front of a class
            self._say(f"Generation failed: {html.escape(type(e).__name__)}: {html.escape(str(e))}", error=True)
            return None
        finally:
            self.button.disabled = False
        if not result.steps:
            self._say("No denoising steps ran (strength too low for this many steps); raise strength or steps.",
                      error=True)
            return result
        self.comparison.clear_output()
        if addon != NO_ADDON:
            self._compare(prompt, addon, result)
        how = "" if parts is self.parts or addon != NO_ADDON else " (9-channel inpainting model)"
        self._say(f"Done: {len(result.steps)} steps{how}. Move the step slider; pick a word to see its attention.")
        self.result.clear_output()
        with self.result:
            display(step_scrubber(parts, result, prompt, tokens=_prompt_words(parts, prompt)))
        return result

    def _compare(self, prompt: str, addon: str, result):
        """Draw the same prompt and seed without the add-on, and show both side by side."""
        without = pipelines.text_to_image(self.parts, prompt, num_inference_steps=self.steps.value,
                                          guidance_scale=float(self.guidance.value), progress=False,
                                          generator=torch.Generator().manual_seed(int(self.seed.value)))
        self.last_comparison = (without.images[0], result.images[0])
        fig, axes = plt.subplots(1, 2, figsize=(4.4, 2.4))
        for ax, im, title in zip(axes, self.last_comparison, ("without the add-on", f"with {addon.split(' (')[0]}")):
            ax.imshow(im)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
        with self.comparison:
            display(fig)
        plt.close(fig)


def build_app(parts=None, inpaint_parts=None, controlnet=None):
    """The classroom demo's widget tree (display it, or serve demo/classroom.ipynb with Voila)."""
    return ClassroomApp(parts, inpaint_parts, controlnet=controlnet).view
