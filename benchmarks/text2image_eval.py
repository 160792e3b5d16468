"""Score a text-to-image checkpoint: R-precision and caption faithfulness, each with its ceiling and floor.

    python benchmarks/text2image_eval.py --config configs/gan_int_cls_mnist.yaml \\
        --ckpt runs/gan_int_cls_mnist/checkpoints/last.ckpt \\
        --eval_encoder runs/text_encoder_mnist_eval/checkpoints/last.ckpt --out runs/gan_int_cls_mnist/eval

The prompts are the first captions of the first ``--num_prompts`` validation images of the config's datamodule
(``--data KEY=VALUE`` overrides its arguments, e.g. ``--data image_size=32``); one image is generated per prompt
(seeded noise, the EMA generator when there is one). Printed and written to ``<out>/text2image_eval.json``:

- ``r_precision`` (``--eval_encoder``: a TextEncoderPretraining trained apart from the GAN's conditioning encoder,
  e.g. with another seed): the prompt ranked first among itself and 99 other validation captions by the evaluation
  encoder's image-text similarity; chance 1%. Ceiling: the real validation images with their captions. Floor: the
  generated images against shuffled captions.
- MNIST captions: ``digit_accuracy`` (the project's MNIST classifier reads the prompt's digit),
  ``thickness_agreement`` and ``slant_agreement`` (the stroke measured as the captions measure it agrees with the
  words) - ceiling: real digits with their captions; floor: generated digits against shuffled captions.
- CelebA captions: ``attribute_accuracy`` over the attributes the prompts mention (``gender_accuracy`` for Male,
  ``other_accuracy`` for the rest), by an attribute classifier trained on the real training faces (cached in
  ``--attribute_classifier``, trained when missing; ``classifier_val_accuracy`` is its accuracy on all 40 attributes
  of the validation faces) - ceiling: real faces with their captions; floor: generated faces against shuffled
  captions.

``<out>/prompts.png`` shows eight prompts with eight samples each (captioned rows), ``<out>/interpolation.png``
the first prompt morphing into the second. See ``benchmarks/README.md`` for the evidence runs and their results.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.captions import CaptionDataModule, CelebACaptionsDataModule, MNISTCaptionsDataModule  # noqa: E402
from lightning_gans.callbacks.common import save_grid  # noqa: E402
from lightning_gans.loading import load_trained  # noqa: E402
from lightning_gans.metrics import text2image as m  # noqa: E402


def build_datamodule(config: Path, overrides: list[str]) -> CaptionDataModule:
    """The config's datamodule with ``KEY=VALUE`` overrides (values read as YAML)."""
    data = yaml.safe_load(config.read_text())["data"]
    module, name = data["class_path"].rsplit(".", 1)
    kwargs = dict(data.get("init_args") or {})
    for item in overrides:
        key, _, value = item.partition("=")
        kwargs[key] = yaml.safe_load(value)
    return getattr(importlib.import_module(module), name)(**kwargs)


def load_gan(ckpt: Path) -> Any:
    # The GAN checkpoint holds its text encoder's weights: the pretraining checkpoint is not needed.
    return load_trained(ckpt, families=("GANINTCLS", "DFGAN"))[0]  # without the encoder's file: the GAN holds it


@torch.no_grad()
def generate(model: Any, tokens: torch.Tensor, seed: int, batch_size: int = 250) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(len(tokens), model.latent_dim, generator=gen)
    return torch.cat(
        [
            model.sample(z=z[i : i + batch_size], tokens=tokens[i : i + batch_size])
            for i in range(0, len(tokens), batch_size)
        ]
    )


def stack_images(dataset: Any, indices: list[int]) -> torch.Tensor:
    return torch.stack([dataset.images[dataset.locate(i)[0]] for i in indices])


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    dm = build_datamodule(Path(args.config), args.data)
    dm.setup("fit")
    val = dm.dataset("val")
    n = min(args.num_prompts, len(val))
    items = list(range(n))
    texts = [val.captions[i][0] for i in items]
    facts = [val.facts[i][0] for i in items] if val.facts is not None else None
    tokens = torch.stack([val[i][1] for i in items])
    real = stack_images(val, items)

    model = load_gan(Path(args.ckpt))
    if model.vocab.words != dm.vocabulary:
        raise SystemExit(
            "the checkpoint's vocabulary differs from the datamodule's: give the config it was trained "
            "with (and the same --data overrides)"
        )
    fake = generate(model, tokens, args.seed)
    results: dict[str, Any] = {
        "ckpt": str(args.ckpt),
        "family": type(model).__name__,
        "g_steps": model.g_steps,
        "num_prompts": n,
        "image_shape": list(fake.shape[1:]),
    }
    shuffled_texts = m.shuffled(texts, args.seed)

    if args.eval_encoder:
        encoder, _ = load_trained(args.eval_encoder, families=("TextEncoderPretraining",))
        pool = [val.captions[i][0] for i in range(len(val))]
        results["r_precision"] = m.r_precision_of(encoder, fake, texts, pool, seed=args.seed)
        results["r_precision_ceiling"] = m.r_precision_of(encoder, real, texts, pool, seed=args.seed)
        results["r_precision_floor"] = m.r_precision_of(encoder, fake, shuffled_texts, pool, seed=args.seed)

    if isinstance(dm, MNISTCaptionsDataModule) and facts is not None:
        results["generated"] = m.mnist_faithfulness(fake, facts, dm.rules)
        results["ceiling"] = m.mnist_faithfulness(real, facts, dm.rules)
        results["floor"] = m.mnist_faithfulness(fake, m.shuffled(facts, args.seed), dm.rules)
    elif isinstance(dm, CelebACaptionsDataModule) and facts is not None:
        net, record = attribute_classifier(dm, args)
        results["classifier_val_accuracy"] = record["val_accuracy"]
        names = dm.attribute_names
        results["generated"] = m.attribute_faithfulness(m.predict_attributes(net, fake), facts, names)
        results["ceiling"] = m.attribute_faithfulness(m.predict_attributes(net, real), facts, names)
        results["floor"] = m.attribute_faithfulness(
            m.predict_attributes(net, fake), m.shuffled(facts, args.seed), names
        )

    # Pictures: eight distinct prompts x eight samples, and an interpolation between the first two.
    prompts = list(dict.fromkeys(texts))[:8]
    shown = model.sample(
        z=torch.randn(8 * len(prompts), model.latent_dim, generator=torch.Generator().manual_seed(1)),
        text=[p for p in prompts for _ in range(8)],
    )
    save_grid(shown, out / "prompts.png", nrow=8, captions=[p for p in prompts for _ in range(8)])
    if len(prompts) >= 2:
        z = torch.randn(4, model.latent_dim, generator=torch.Generator().manual_seed(2))
        row = model.interpolate(prompts[0], prompts[1], steps=8, z=z)
        save_grid(row, out / "interpolation.png", nrow=8, captions=[f"{prompts[0]} -> {prompts[1]}"] * len(row))
    results["seconds"] = round(time.time() - started, 1)
    (out / "text2image_eval.json").write_text(json.dumps(results, indent=2))
    return results


def attribute_classifier(dm: CelebACaptionsDataModule, args: argparse.Namespace) -> tuple[Any, dict]:
    """The cached attribute classifier of this image size, or one trained now on the training faces."""
    path = Path(args.attribute_classifier or Path(args.out) / f"attribute_classifier_{dm.image_size}.pt")
    if path.is_file():
        net, record = m.load_attribute_classifier(path)
        if tuple(net.config["image_shape"]) == tuple(dm.image_shape):
            return net, record
    train, val = dm.dataset("train"), dm.dataset("val")
    train_images = torch.stack([train.images[i] for i in range(len(train.images))])
    train_attrs, val_attrs = dm.attributes("train"), dm.attributes("val")
    print(f"training the attribute classifier on {len(train_images)} faces ({args.classifier_epochs} epochs)...")
    net = m.train_attribute_classifier(train_images, train_attrs, epochs=args.classifier_epochs, seed=args.seed)
    val_images = torch.stack([val.images[i] for i in range(len(val.images))])
    accuracy = float((m.predict_attributes(net, val_images) == val_attrs.bool()).float().mean())
    record = {"val_accuracy": accuracy, "epochs": args.classifier_epochs, "num_train": len(train_images)}
    m.save_attribute_classifier(net, path, record)
    return net, record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the GAN's config (its data section builds the prompts)")
    parser.add_argument("--ckpt", required=True, help="the GAN checkpoint")
    parser.add_argument("--eval_encoder", help="a TextEncoderPretraining checkpoint trained apart (R-precision)")
    parser.add_argument("--data", nargs="*", default=[], metavar="KEY=VALUE", help="datamodule overrides")
    parser.add_argument("--num_prompts", type=int, default=1000)
    parser.add_argument("--attribute_classifier", help="CelebA: cached classifier file (default: in --out)")
    parser.add_argument("--classifier_epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="text2image_eval")
    results = evaluate(parser.parse_args(argv))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
