"""Images per second of the exported generator in onnxruntime against the eager PyTorch module, on the CPU.

For DCGAN (MNIST, 28x28), StyleGAN (32x32) and SRResNet (x4, 32x32 -> 128x128) at their configs' widths with random
weights (speed does not depend on training): each engine runs in its own process (``spawn``), the two alternate for
``--rounds`` rounds, each round timing ``--batches`` batches after a warm-up, and the table gives the median of the
rounds' images/s and the median of the per-round ratios (onnxruntime / eager). Both use ``--threads`` threads.

    python benchmarks/bench_onnx.py                    # the README table (one thread)
    python benchmarks/bench_onnx.py --device cuda      # eager on the GPU only: onnxruntime here is the CPU build
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._process import in_process  # noqa: E402

MODELS = {  # family: (constructor arguments, batch size)
    "DCGAN": ({"image_shape": (1, 28, 28), "latent_dim": 100}, 64),
    "StyleGAN": ({"image_shape": (3, 32, 32), "channel_base": 4096}, 16),
    "SRResNet": ({"image_shape": (3, 128, 128), "skip": "bicubic"}, 4),
}


def _inputs(model, batch: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    if model.latent_dim:
        z = torch.randn(batch, model.latent_dim, generator=g)
        return (z, torch.tensor(1.0)) if type(model).__name__ == "StyleGAN" else (z,)
    c, h, w = model.image_shape
    return (torch.rand(batch, c, h // model.scale, w // model.scale, generator=g) * 2 - 1,)


def _time(args: dict, queue) -> None:
    import torch

    torch.set_num_threads(args["threads"])
    from lightning_gans.exporting import program
    from lightning_gans.models import FAMILIES

    torch.manual_seed(0)
    kwargs, batch = MODELS[args["family"]]
    model = FAMILIES[args["family"]](**kwargs).eval()
    inputs = _inputs(model, batch)
    if args["engine"] == "eager":
        wrapped = program(model).module.to(args["device"])
        inputs = tuple(x.to(args["device"]) for x in inputs)

        def run():
            with torch.no_grad():
                out = wrapped(*inputs)
            if args["device"] == "cuda":
                torch.cuda.synchronize()
            return out

    else:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args["threads"]
        session = onnxruntime.InferenceSession(args["onnx"], options, providers=["CPUExecutionProvider"])
        feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)}

        def run():
            return session.run(None, feeds)

    for _ in range(2):
        run()
    start = time.perf_counter()
    for _ in range(args["batches"]):
        run()
    queue.put(args["batches"] * batch / (time.perf_counter() - start))


def _export(args: dict, queue) -> None:
    import torch

    from lightning_gans.exporting import export
    from lightning_gans.models import FAMILIES

    torch.manual_seed(0)
    kwargs, _ = MODELS[args["family"]]
    path, worst, _ = export(FAMILIES[args["family"]](**kwargs), "onnx", Path(args["folder"]))
    queue.put((str(path), worst))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="eager's device (onnxruntime runs on the CPU)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            onnx, worst = in_process(_export, {"family": family, "folder": f"{tmp}/{family}"})
            common = {"family": family, "threads": args.threads, "batches": args.batches, "device": args.device}
            eager, ort, ratios = [], [], []
            for _ in range(args.rounds):
                e = in_process(_time, {**common, "engine": "eager"})
                o = in_process(_time, {**common, "engine": "onnxruntime", "onnx": onnx})
                eager.append(e)
                ort.append(o)
                ratios.append(o / e)
            row = {
                "family": family,
                "batch": MODELS[family][1],
                "eager": statistics.median(eager),
                "onnxruntime": statistics.median(ort),
                "ratio": statistics.median(ratios),
                "max_diff": worst,
            }
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    print(
        f"\n{args.rounds} alternating rounds of {args.batches} batches, {args.threads} thread(s), eager on "
        f"{args.device}; median images/s and median per-round ratio\n"
    )
    print("| family | batch | eager images/s | onnxruntime images/s | onnxruntime / eager | export max abs diff |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['family']} | {r['batch']} | {r['eager']:.1f} | {r['onnxruntime']:.1f} | {r['ratio']:.2f}x | "
            f"{r['max_diff']:.1e} |"
        )
    return rows


if __name__ == "__main__":
    main()
