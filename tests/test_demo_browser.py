"""`lightning-gans demo` in a real browser: the Gradio app of a tiny StyleGAN and a tiny GAN-INT-CLS on free localhost
ports, driven by Playwright in headless Chromium (Debian's `chromium`; .ci/run installs it). Each test opens the page,
changes a control, presses the button and checks that an image appears and that it changed, and that it is the image
the Python API gives for those settings."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_gans.serving import Limits, enlarged, pil_image, uint8_images
from lightning_gans.superres import interpolated
from tests.servers import free_port, tiny_folder

pytest.importorskip("gradio")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("LIGHTNING_GANS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does) or set "
        "LIGHTNING_GANS_CHROMIUM to a Chromium binary",
        allow_module_level=True,
    )
#: As root in a container Chromium needs --no-sandbox; the rest keep it off this machine's closed network.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
FLAGS += ["--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    """{family: (url, model)}: the demo of each tiny model, launched in this process (Gradio serves it on a thread)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import lightning_gans
    from lightning_gans.demo import build_demo

    root = tmp_path_factory.mktemp("demo")
    running = {}
    try:
        for name in ("StyleGAN", "GANINTCLS", "SRResNet"):
            model = lightning_gans.from_pretrained(tiny_folder(name, root))
            demo = build_demo(model, Limits(), f"tiny {name}")
            port = free_port()
            demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
            running[name] = (f"http://127.0.0.1:{port}", model, demo)
        yield {name: (url, model) for name, (url, model, _) in running.items()}
    finally:
        for _, _, demo in running.values():
            demo.close()


def _shown(page, selector: str, previous: str | None = None, timeout: float = 60_000) -> tuple[str, bytes]:
    """The src of the image under ``selector`` once it is there (and differs from ``previous``), and its bytes."""
    page.wait_for_function(
        "([sel, prev]) => { const i = document.querySelector(sel + ' img'); return i && i.src && i.src !== prev; }",
        arg=[selector, previous],
        timeout=timeout,
    )
    src = page.locator(f"{selector} img").first.get_attribute("src")
    return src, page.request.get(src).body()


def assert_shows(answer: bytes, expected: torch.Tensor, nrow: int | None = None) -> None:
    """The page's image is the Python API's images as the server's PNG, enlarged (up to one grey level)."""
    want = torch.from_numpy(np.asarray(enlarged(pil_image(expected, nrow))).copy())
    got = uint8_images(answer)
    assert got.shape[:2] == want.shape[:2]
    assert (got.int() - want.reshape(got.shape).int()).abs().max() <= 1


def _noise(model, n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))


def test_stylegan_demo_seed_and_truncation_change_the_image(browser, apps):
    url, model = apps["StyleGAN"]
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#generate")
    page.locator("#seed input").fill("5")
    page.click("#generate")
    first_src, first = _shown(page, "#output")
    assert_shows(first, model.sample(z=_noise(model, 8, 5), truncation_psi=float(model.truncation_psi)))

    page.locator("#truncation input[type=number]").fill("0.3")
    page.locator("#truncation input[type=number]").press("Enter")
    page.click("#generate")
    second_src, second = _shown(page, "#output", first_src)
    assert second != first
    assert_shows(second, model.sample(z=_noise(model, 8, 5), truncation_psi=0.3))

    page.locator("#seed input").fill("6")
    page.click("#generate")
    _, third = _shown(page, "#output", second_src)
    assert third != second

    page.get_by_text("Style mixing").click()  # the mixing grid: rows 1, 2, 3 x columns 4, 5, 6, 7, with the sources
    page.click("#mix")
    _, grid = _shown(page, "#mix_output")
    rows, cols = (
        torch.cat([_noise(model, 1, s) for s in (1, 2, 3)]),
        torch.cat([_noise(model, 1, s) for s in (4, 5, 6, 7)]),
    )
    images, nrow = model.style_mixing_grid(rows, cols)
    assert_shows(grid, images, nrow)

    page.get_by_text("W interpolation").click()  # seeds 1 -> 2 in 8 steps, linear in W
    page.click("#interpolate")
    _, strip = _shown(page, "#strip")
    t = torch.linspace(0, 1, 8)
    assert_shows(strip, model.interpolate(_noise(model, 1, 1).expand(8, -1), _noise(model, 1, 2).expand(8, -1), t), 8)
    page.close()


def test_super_resolution_demo_shows_the_bicubic_beside_the_models_upscale(browser, apps, tmp_path):
    url, model = apps["SRResNet"]
    lr = torch.randint(0, 256, (8, 12, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "lr.png"
    Image.fromarray(lr.numpy()).save(path)
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#generate")
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.locator("#upload img").first.wait_for(timeout=30_000)
    page.click("#generate")
    _, upscaled = _shown(page, "#output")
    _, cubic = _shown(page, "#bicubic")
    x = lr.permute(2, 0, 1)[None].float().div(127.5).sub(1)
    assert_shows(upscaled, model.translate(x))
    assert_shows(cubic, interpolated(x, 4, "bicubic"))  # the project's bicubic baseline (MATLAB's kernel)
    page.close()


def test_text_to_image_demo_takes_a_typed_prompt_and_shows_a_bad_ones_message(browser, apps):
    url, model = apps["GANINTCLS"]
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#generate")
    prompt = page.locator("#prompt textarea")
    prompt.fill("a thin one")
    page.click("#generate")
    first_src, first = _shown(page, "#output")
    prompt.fill("a thick seven slanted to the right")
    page.click("#generate")
    _, second = _shown(page, "#output", first_src)
    assert second != first
    assert_shows(second, model.sample(z=_noise(model, 8, 0), text="a thick seven slanted to the right"))

    page.get_by_text("Prompt interpolation").click()  # "a thick seven" -> "a thin one" in 8 steps, noise of seed 0
    page.click("#interpolate")
    _, strip = _shown(page, "#strip")
    assert_shows(strip, model.interpolate("a thick seven", "a thin one", 8, z=_noise(model, 1, 0)), 8)

    prompt.fill("   ")  # an empty prompt: the server's message, shown by Gradio, and no new image
    page.click("#generate")
    page.get_by_text("needs a prompt").first.wait_for(timeout=30_000)
    page.close()
