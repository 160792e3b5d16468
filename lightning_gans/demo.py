"""``lightning-gans demo``: a Gradio app for a pretrained folder or a checkpoint, with the controls its family has.

    lightning-gans demo --pretrained pretrained/fast_mnist                   # http://127.0.0.1:7860
    lightning-gans demo --config configs/srresnet_celeba.yaml --ckpt_path runs/srresnet_celeba/checkpoints/last.ckpt

- noise families: seed and number of images; the class (class-conditional families); the truncation psi, a
  style-mixing grid (row and column seeds) and a W interpolation strip between two seeds (StyleGAN); a prompt and an
  interpolation strip between two prompts (text-to-image families);
- image-to-image families: an image upload (a colour label map for GauGAN), and the direction for CycleGAN;
- super-resolution families: an image upload, the bicubic upscale beside the model's.

Every request goes through the checks and the code the server uses (:mod:`lightning_gans.serving`): the same seed
gives the image ``serve`` and ``model.sample`` give, and a bad input shows the server's message. The app binds
127.0.0.1 unless ``--host`` says otherwise (``--host 0.0.0.0`` exposes it, without authentication); it makes no
share link and sends no analytics.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch

from lightning_gans.serving import (
    BadRequest,
    Limits,
    add_model_arguments,
    bicubic,
    card_metrics,
    enlarged,
    is_stylegan,
    limits_of,
    load_model,
    model_source,
    noise,
    parse_image,
    parse_sample,
    pil_image,
    resolve_palette,
    run_images,
    run_samples,
    task_of,
)

#: Most images the demo's sliders ask for at once (the server's --max_samples still applies).
MAX_SHOWN = 16


def shown(images: torch.Tensor, nrow: int | None = None):
    """The picture the server would answer (:func:`~lightning_gans.serving.pil_image`), enlarged to be seen."""
    return enlarged(pil_image(images, nrow))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-gans demo", description="A web demo (Gradio) of a trained model.")
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="the address to bind: 127.0.0.1 (this machine) or 0.0.0.0")
    parser.add_argument("--port", type=int, default=7860)
    return parser


def _seeds(text: str, what: str) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).replace(",", " ").split()]
    except ValueError:
        raise BadRequest(f"{what}: seeds are whole numbers separated by commas, got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise BadRequest(f"{what}: give one seed or more (0 or above), got {text!r}")
    return seeds


def build_demo(model: Any, limits: Limits, title: str, palette: Any = None, metrics: dict | None = None):
    """The Gradio Blocks app of ``model`` (not launched)."""
    import gradio as gr

    family, task = type(model).__name__, task_of(model)

    def guarded(fn):
        def run(*args):
            try:
                return fn(*args)
            except BadRequest as err:
                raise gr.Error(err.message) from None

        return run

    with gr.Blocks(title=f"lightning-gans: {family}") as demo:
        gr.Markdown(f"## lightning-gans · {family}\n{title}")
        shown_metrics = {k: v for k, v in (metrics or {}).items() if not k.endswith("_std") and "/num_" not in k}
        if shown_metrics:  # the model card's, as /info gives them (spreads and sample counts left out)
            gr.Markdown("model card: " + " · ".join(f"{k}: {v:.4g}" for k, v in shown_metrics.items())[:400])
        if task == "sample":
            _sample_controls(gr, model, limits, guarded)
        else:
            _image_controls(gr, model, limits, guarded, palette)
    return demo


def _sample_controls(gr: Any, model: Any, limits: Limits, guarded: Any) -> None:
    most = min(MAX_SHOWN, limits.max_samples)
    with gr.Row():
        with gr.Column(scale=1):
            seed = gr.Number(value=0, precision=0, minimum=0, label="seed", elem_id="seed")
            n = gr.Slider(1, most, value=min(8, most), step=1, label="images", elem_id="n")
            inputs = [seed, n]
            if model.conditional:
                choices = ["0, 1, 2, ... in turn", *map(str, range(model.num_classes))]
                inputs.append(gr.Dropdown(choices, value=choices[0], label="class", elem_id="class"))
            if is_stylegan(model):
                psi = float(model.truncation_psi)
                inputs.append(gr.Slider(-1.0, 1.5, value=psi, step=0.05, label="truncation psi", elem_id="truncation"))
            if model.takes_text:
                example = (model.grid_prompts or ["a thick seven"])[0]
                inputs.append(gr.Textbox(value=example, label="prompt", elem_id="prompt"))
            button = gr.Button("Generate", variant="primary", elem_id="generate")
        output = gr.Image(label="samples", type="pil", format="png", elem_id="output", interactive=False)

    def generate(seed: float, n: float, *rest: Any):
        body: dict[str, Any] = {"n": int(n), "seed": int(seed or 0)}
        rest = list(rest)
        if model.conditional:
            choice = rest.pop(0)
            if choice and choice[0].isdigit() and "," not in choice:
                body["class"] = int(choice)
        if is_stylegan(model):
            body["truncation_psi"] = float(rest.pop(0))
        if model.takes_text:
            body["prompt"] = rest.pop(0)
        (images,) = run_samples(model, [parse_sample(model, body, limits)])
        return shown(images)

    button.click(guarded(generate), inputs, output)

    if is_stylegan(model):
        with gr.Accordion("Style mixing", open=False):
            with gr.Row():
                rows = gr.Textbox(value="1, 2, 3", label="row seeds (coarse styles)", elem_id="mix_rows")
                cols = gr.Textbox(value="4, 5, 6, 7", label="column seeds (fine styles)", elem_id="mix_cols")
                mix_button = gr.Button("Mix", elem_id="mix")
            mix_output = gr.Image(label="style mixing", type="pil", format="png", elem_id="mix_output")

        def mix(rows_text: str, cols_text: str):
            row_seeds, col_seeds = _seeds(rows_text, "row seeds"), _seeds(cols_text, "column seeds")
            if (len(row_seeds) + 1) * (len(col_seeds) + 1) > limits.max_samples:
                raise BadRequest(f"the grid would have more than {limits.max_samples} images: fewer seeds")
            row_z = torch.cat([noise(model, 1, s) for s in row_seeds])
            col_z = torch.cat([noise(model, 1, s) for s in col_seeds])
            images, nrow = model.style_mixing_grid(row_z, col_z)
            return shown(images.cpu(), nrow)

        mix_button.click(guarded(mix), [rows, cols], mix_output)

        with gr.Accordion("W interpolation", open=False):
            with gr.Row():
                seed_a = gr.Number(value=1, precision=0, minimum=0, label="from seed", elem_id="seed_a")
                seed_b = gr.Number(value=2, precision=0, minimum=0, label="to seed", elem_id="seed_b")
                steps = gr.Slider(2, most, value=min(8, most), step=1, label="steps", elem_id="steps")
                strip_button = gr.Button("Interpolate", elem_id="interpolate")
            strip = gr.Image(label="interpolation", type="pil", format="png", elem_id="strip")

        def interpolate(a: float, b: float, k: float):
            k = int(k)
            t = torch.linspace(0, 1, k)
            images = model.interpolate(noise(model, 1, int(a)).expand(k, -1), noise(model, 1, int(b)).expand(k, -1), t)
            return shown(images.cpu(), k)

        strip_button.click(guarded(interpolate), [seed_a, seed_b, steps], strip)

    if model.takes_text:
        with gr.Accordion("Prompt interpolation", open=False):
            with gr.Row():
                first = gr.Textbox(value="a thick seven", label="from", elem_id="prompt_a")
                second = gr.Textbox(value="a thin one", label="to", elem_id="prompt_b")
                steps = gr.Slider(2, most, value=min(8, most), step=1, label="steps")
                strip_button = gr.Button("Interpolate", elem_id="interpolate")
            strip = gr.Image(label="interpolation", type="pil", format="png", elem_id="strip")

        def between(a: str, b: str, k: float, seed: float):
            for prompt in (a, b):
                parse_sample(model, {"prompt": prompt}, limits)  # the server's prompt checks
            images = model.interpolate(a, b, int(k), z=noise(model, 1, int(seed or 0)))
            return shown(images.cpu(), int(k))

        strip_button.click(guarded(between), [first, second, steps, seed], strip)


def _image_controls(gr: Any, model: Any, limits: Limits, guarded: Any, palette: Any) -> None:
    family, task = type(model).__name__, task_of(model)
    with gr.Row():
        with gr.Column(scale=1):
            what = "a colour label map" if palette is not None else "an image"
            upload = gr.Image(label=f"{what} to {task}", type="filepath", elem_id="upload")
            inputs = [upload]
            if family == "CycleGAN":
                inputs.append(gr.Radio(["AtoB", "BtoA"], value="AtoB", label="direction", elem_id="direction"))
            button = gr.Button("Upscale" if task == "upscale" else "Translate", variant="primary", elem_id="generate")
        outputs = []
        if task == "upscale":
            outputs.append(gr.Image(label="bicubic", type="pil", format="png", elem_id="bicubic", interactive=False))
        outputs.append(gr.Image(label=family, type="pil", format="png", elem_id="output", interactive=False))

    def run(path: str | None, *rest: Any):
        if not path:
            raise BadRequest("upload an image first")
        fields = {"image": 1, **({"direction": rest[0]} if rest else {})}
        req = parse_image(model, Path(path).read_bytes(), fields, limits, palette)
        (image,) = run_images(model, [req])
        if task == "upscale":
            return shown(bicubic(model, req)), shown(image)
        return shown(image)

    button.click(guarded(run), inputs, outputs if len(outputs) > 1 else outputs[0])


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline machines: no calls home
    args = _parser().parse_args(argv)
    source, limits = model_source(args), limits_of(args)
    model = load_model(**source, device=args.device)
    palette = resolve_palette(model, args.label_palette)
    title = f"`{args.pretrained or args.ckpt_path}`"
    demo = build_demo(model, limits, title, palette, card_metrics(args.pretrained))
    print(f"lightning-gans demo: {type(model).__name__} at http://{args.host}:{args.port}", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, share=False, show_error=True, ssr_mode=False)


if __name__ == "__main__":  # python -m lightning_gans.demo (what lightning-gans demo runs)
    main()
