"""A trained model's sampling side as an ONNX file or a ``torch.export`` program, checked against PyTorch when written.

:func:`program` wraps the module in the function a user calls, with tensors in and images in [-1, 1] out:

=====================  ==========================================  =============================================
kind                   inputs                                      same as
=====================  ==========================================  =============================================
noise to image         ``z`` [N, latent_dim]                       ``model.sample(z=z)``
class-conditional      ``z``, ``labels`` [N] int64                 ``model.sample(z=z, labels=labels)``
StyleGAN               ``z``, ``truncation_psi`` (a 0-d float)     ``model.sample(z=z, truncation_psi=psi)``
image to image, SR     ``images`` [N, C, H, W]                     ``model.translate(images)`` (SR: untiled)
=====================  ==========================================  =============================================

Text-to-image families are refused: their text encoder packs variable-length captions, which ``torch.export``
cannot trace (share them as pretrained folders). Pix2Pix/CycleGAN/GauGAN in ``generator_mode="train"`` (dropout at
test time, Pix2Pix's default) are refused too: set ``generator_mode = "eval"`` first.

The batch is dynamic; for image inputs height and width are too where the network allows it (else the export keeps
the training size and says so). Both formats go through ``torch.export``; ONNX through its dynamo exporter
(``onnx``/``onnxscript``) and is checked with ``onnxruntime`` (``pip install "lightning-gans[export]"``). Every
export is run on fixed inputs at two batch sizes (and two sizes where dynamic) and compared with the PyTorch module;
the largest difference is reported, and an export off by more than :data:`TOLERANCE` is an error.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lightning_gans.core import GANModule

TOLERANCE = 1e-3  # images in [-1, 1]: a thousandth of the range is far below one 8-bit level (2/255)
FILES = {"onnx": "generator.onnx", "pt2": "generator.pt2"}


class ExportError(ValueError):
    """A model that cannot be exported in the format asked for, or an export that does not match the module."""


class _NoiseToImage(nn.Module):
    def __init__(self, model: GANModule) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: Tensor) -> Tensor:
        return self.model.generate(self.model.sampling_generator(), z).clamp(-1, 1)


class _Conditional(_NoiseToImage):
    def forward(self, z: Tensor, labels: Tensor) -> Tensor:  # type: ignore[override]
        return self.model.generate(self.model.sampling_generator(), z, labels).clamp(-1, 1)


class _StyleGAN(_NoiseToImage):
    def forward(self, z: Tensor, truncation_psi: Tensor) -> Tensor:  # type: ignore[override]
        model = self.model
        return model.sampling_generator()(
            z, truncation_psi=truncation_psi, truncation_cutoff=model.truncation_cutoff, noise_mode="const"
        ).clamp(-1, 1)


class _GaussianCodes(_NoiseToImage):
    """The autoencoder's sampler with its code Gaussian's Cholesky factor computed once (ONNX has no Cholesky)."""

    def __init__(self, model: GANModule) -> None:
        super().__init__(model)
        gaussian = model.code_gaussian
        self.register_buffer("mean", gaussian.mean.detach().clone())
        self.register_buffer("scale", gaussian.scale().detach().clone())

    def forward(self, z: Tensor) -> Tensor:
        codes = (self.mean + z.float() @ self.scale.T).to(z.dtype)  # = code_gaussian.transform(z)
        return self.model.sampling_generator()(codes).clamp(-1, 1)


class _Translator(nn.Module):
    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, images: Tensor) -> Tensor:
        return self.generator(images).clamp(-1, 1)


@dataclass
class Program:
    """A wrapped module, its example inputs at two batch sizes (and sizes), and which dimensions are dynamic."""

    module: nn.Module
    names: list[str]
    inputs: list[tuple[Tensor, ...]]  # first: the one exported with; all: the ones checked
    dynamic: list[dict[int, str]]  # per input: {dim: name}
    notes: list[str] = field(default_factory=list)


def _reference(model: GANModule, names: list[str], inputs: tuple[Tensor, ...]) -> Tensor:
    """What the PyTorch module gives for these inputs, through its own API."""
    args = dict(zip(names, inputs))
    if "images" in args:
        if hasattr(model, "scale"):
            return model.sampling_generator()(args["images"]).clamp(-1, 1)
        return model.translate(args["images"])
    if "truncation_psi" in args:
        return model.sample(z=args["z"], truncation_psi=float(args["truncation_psi"]), noise_mode="const")
    return model.sample(z=args["z"], labels=args.get("labels"))


def program(model: GANModule) -> Program:
    """The exportable function of ``model`` (see the module docstring); :class:`ExportError` when it has none."""
    family = type(model).__name__
    model.eval()
    if hasattr(model, "refresh_ema_statistics"):
        model.refresh_ema_statistics()
    g = torch.Generator().manual_seed(0)
    if model.latent_dim > 0:
        z = [torch.randn(n, model.latent_dim, generator=g) for n in (2, 5)]
        dyn = [{0: "batch"}]
        if getattr(model, "takes_text", False):
            raise ExportError(
                f"{family} cannot be exported yet: its text encoder packs captions of different lengths "
                "(pack_padded_sequence), an op torch.export cannot trace; use the pretrained folder (--format "
                "pretrained) to share it"
            )
        if family == "StyleGAN":
            psi = [torch.tensor(0.7), torch.tensor(1.0)]
            return Program(_StyleGAN(model), ["z", "truncation_psi"], list(zip(z, psi)), dyn + [{}])
        if model.conditional:
            labels = [torch.arange(n) % model.num_classes for n in (2, 5)]
            return Program(_Conditional(model), ["z", "labels"], list(zip(z, labels)), dyn + [{0: "batch"}])
        wrapper = _GaussianCodes(model) if hasattr(model, "code_gaussian") else _NoiseToImage(model)
        return Program(wrapper, ["z"], [(x,) for x in z], dyn)
    if hasattr(model, "scale"):  # super-resolution: the generator itself, untiled
        generator, channels = model.sampling_generator(), model.image_shape[0]
        h, w = model.image_shape[1] // model.scale, model.image_shape[2] // model.scale
        sizes = [(h, w), (h + 2, w + 4)]
    elif family in ("Pix2Pix", "GauGAN", "CycleGAN"):
        if getattr(model, "generator_mode", "eval") != "eval":
            raise ExportError(
                f"{family} with generator_mode 'train' samples with dropout at test time, which an exported graph "
                "does not reproduce: export with --generator_mode eval (model.generator_mode = 'eval')"
            )
        generator = model.generator_ab if family == "CycleGAN" else model.sampling_generator()
        channels = model.input_channels
        h, w = model.image_shape[1:]
        sizes = [(h, w), (h * 2, w * 2)]
    else:
        raise ExportError(f"{family} makes no images from an input this exporter knows")
    images = [torch.rand(n, channels, *size, generator=g) * 2 - 1 for n, size in zip((2, 3), sizes)]
    if family == "GauGAN":  # one-hot label maps
        images = [torch.nn.functional.one_hot(x.argmax(1), channels).permute(0, 3, 1, 2).float() for x in images]
    return Program(_Translator(generator), ["images"], [(x,) for x in images], [{0: "batch", 2: "height", 3: "width"}])


def _dynamic_shapes(prog: Program, sizes: bool) -> tuple[dict[int, Any], ...]:
    dims: dict[str, Any] = {}
    shapes = []
    for spec in prog.dynamic:
        shape = {}
        for dim, name in spec.items():
            if name in ("height", "width") and not sizes:
                continue
            shape[dim] = dims.setdefault(name, torch.export.Dim.AUTO)
        shapes.append(shape)
    return tuple(shapes)


def _export(prog: Program) -> torch.export.ExportedProgram:
    """``torch.export`` with dynamic batch (and sizes; without them when the network refuses)."""
    try:
        exported = torch.export.export(prog.module, prog.inputs[0], dynamic_shapes=_dynamic_shapes(prog, True))
        exported.module()(*prog.inputs[-1])  # its guards hold at the other batch size and image size
        return exported
    except Exception as err:  # a network whose sizes are constrained (e.g. U-Net: multiples of 2^depth)
        if not any("height" in d.values() for d in prog.dynamic):
            raise ExportError(f"torch.export failed: {type(err).__name__}: {str(err)[:300]}") from err
        prog.notes.append("height and width fixed at the training size (the network constrains them)")
        prog.inputs = [x for x in prog.inputs if x[0].shape[2:] == prog.inputs[0][0].shape[2:]] + [
            (torch.cat([prog.inputs[0][0], prog.inputs[0][0][:1]]),)
        ]
        return torch.export.export(prog.module, prog.inputs[0], dynamic_shapes=_dynamic_shapes(prog, False))


def _check(model: GANModule, prog: Program, run) -> float:
    worst = 0.0
    with torch.no_grad():
        for inputs in prog.inputs:
            want = _reference(model, prog.names, inputs)
            got = torch.as_tensor(run(inputs))
            if got.shape != want.shape:
                raise ExportError(f"the export made {tuple(got.shape)} where the module makes {tuple(want.shape)}")
            worst = max(worst, float((got - want).abs().max()))
    if worst > TOLERANCE:
        raise ExportError(f"the export differs from the module by {worst:.2e} (> {TOLERANCE}): not written")
    return worst


def require_onnx() -> None:
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(
            f'--format onnx needs {", ".join(missing)}, which are not installed: pip install "lightning-gans[export]"'
        )


def export(model: GANModule, fmt: str, folder: Path) -> tuple[Path, float, Program]:
    """Write ``model``'s sampling program as ``fmt`` ("onnx" or "pt2") into ``folder``; returns (file, the largest
    difference from the module over the checked inputs, the Program with those inputs and its notes). Nothing is left
    behind when the check fails."""
    if fmt not in FILES:
        raise ExportError(f"unknown format {fmt!r}; valid: {', '.join(FILES)}")
    if fmt == "onnx":
        require_onnx()
    prog = program(model)
    exported = _export(prog)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILES[fmt]
    try:
        if fmt == "pt2":
            torch.export.save(exported, str(path))
            loaded = torch.export.load(str(path)).module()

            def run(inputs):
                return loaded(*inputs)

        else:
            import onnxruntime

            try:
                onnx_program = torch.onnx.export(
                    exported, (), input_names=prog.names, output_names=["generated"], dynamo=True, verbose=False
                )
            except Exception as err:
                first = str(err).strip().splitlines()[0][:200]
                raise ExportError(f"{type(model).__name__} could not be converted to ONNX: {first}") from err
            onnx_program.save(str(path))
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            feeds = [i.name for i in session.get_inputs()]

            def run(inputs):
                return session.run(None, {n: x.numpy() for n, x in zip(feeds, inputs) if n in feeds})[0]

        worst = _check(model, prog, run)
    except BaseException:
        path.unlink(missing_ok=True)
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
    return path, worst, prog


__all__ = ["FILES", "TOLERANCE", "ExportError", "Program", "export", "program", "require_onnx"]
