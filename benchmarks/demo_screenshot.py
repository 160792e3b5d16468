"""A screenshot of ``lightning-gans demo`` for README: the app of a pretrained folder in headless Chromium, after
setting its controls and pressing the button.

    python benchmarks/demo_screenshot.py --pretrained pretrained/fast_mnist --set seed=3 --set class=7 \\
        --out docs/demo_fast_mnist.png
    python benchmarks/demo_screenshot.py --pretrained pretrained/stylegan_celeba32 --set truncation=0.7 --out x.png

``--set NAME=VALUE`` fills the control whose ``elem_id`` is NAME (seed, n, class, truncation, prompt) before
Generate is pressed; ``--upload FILE`` gives an image to image-to-image and super-resolution apps. Chromium is
Debian's (``--chromium``, default ``/usr/bin/chromium``), driven by Playwright.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def fill(page, name: str, value: str) -> None:
    """Set the control ``#name`` (a number or text box, a slider's number box, or a dropdown)."""
    control = page.locator(f"#{name}")
    for selector in ("input[type=number]", "textarea", "input"):
        box = control.locator(selector)
        if box.count():
            box.first.click()
            box.first.fill(value)
            box.first.press("Enter")  # a dropdown takes the option its typed value filters to
            return
    raise SystemExit(f"the demo has no control #{name}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrained", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--upload", help="an image for image-to-image and super-resolution apps")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=620)
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    from playwright.sync_api import sync_playwright

    import lightning_gans
    from lightning_gans.demo import build_demo
    from lightning_gans.serving import Limits, card_metrics, resolve_palette
    from tests.servers import free_port

    model = lightning_gans.from_pretrained(args.pretrained)
    demo = build_demo(
        model, Limits(), f"`{args.pretrained}`", resolve_palette(model, None), card_metrics(args.pretrained)
    )
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(f"http://127.0.0.1:{port}")
            page.wait_for_selector("#generate")
            for item in args.set:
                name, _, value = item.partition("=")
                fill(page, name, value)
            if args.upload:
                page.locator("#upload input[type=file]").set_input_files(args.upload)
            page.click("#generate")
            page.wait_for_selector("#output img", timeout=120_000)
            page.wait_for_timeout(500)  # the image's fade-in
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            browser.close()
    finally:
        demo.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
