"""ADA's augmentation pipeline (the transformations only; the adaptive ``p`` is the caller's), as plain functions.

:func:`ada_augment` follows Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"
(NVlabs/stylegan2-ada-pytorch, ``training/augment.py``, ``AugmentPipe``): every transformation of the policy is
applied to each image independently with probability ``p`` (one draw per image per transformation), with the official
default strengths. Like DiffAugment it is differentiable with respect to the images, and is applied to real and
generated images before every discriminator call.

* blit (``b``): ``xflip`` (mirror along x, chosen with probability 1/2 when applied), ``rotate90`` (a uniform multiple
  of 90 degrees), ``xint`` (integer translation of up to ``XINT_MAX`` = 1/8 of the size along each axis);
* geometric (``g``): ``scale`` (isotropic, ``2^N(0, 0.2^2)``), ``rotate`` (uniform over the full circle, drawn twice,
  before and after the anisotropic scaling, each with probability ``1 - sqrt(1 - p)`` so that the image is rotated
  with probability ``p``), ``aniso`` (``2^N(0, 0.2^2)`` along x and its inverse along y), ``xfrac`` (translation of
  ``N(0, 0.125^2)`` times the size along each axis). Together with the blit ones they form one inverse affine matrix
  per image (output pixel -> input pixel, centred pixel coordinates), applied once with reflection at the borders;
* colour (``c``): ``brightness`` (``+ N(0, 0.2^2)``), ``contrast`` (``x 2^N(0, 0.5^2)``, about 0, i.e. mid-grey in
  [-1, 1], as the official code does, not about the image mean as DiffAugment does), ``lumaflip`` (with probability
  1/2 when applied, the Householder reflection of the luma axis ``(1, 1, 1) / sqrt(3)``), ``hue`` (rotation about the
  luma axis, uniform over the full circle), ``saturation`` (chroma scaled by ``2^N(0, 1)``). They form one 4x4
  homogeneous colour matrix per image, applied once. On 1-channel images, as in the official code, the matrix's three
  colour rows are averaged: brightness and contrast apply, lumaflip negates the image, hue and saturation are skipped.

Policies (:data:`POLICIES`): ``b``, ``bg``, ``bgc`` (the paper's default), ``blit``, ``geom``, ``color`` and every
single transformation by name; a comma-separated list of them takes the union.

Deviations from the official code:

* Not implemented: image-space filtering (``f``), additive noise (``n``) and cutout (the second ``c`` of ``bgcfnc``);
  ``bgcf``, ``bgcfn`` and ``bgcfnc`` are rejected. There is no ``debug_percentile``.
* Resampling is one bilinear ``F.grid_sample`` (reflection padding, ``align_corners=True`` so that it mirrors about
  the edge pixels) instead of the official 2x upsampling with a sym6 wavelet filter, ``grid_sample`` and filtered
  downsampling: there is no anti-aliasing, so shrinking may alias a little. It is twice differentiable with respect
  to the images (PyTorch >= 2.14 has ``grid_sample``'s double backward, and the reflection and nearest modes never go
  to cuDNN), so an R1 penalty through augmented reals works without the official ``grid_sample_gradfix``.
* The blit transformations are executed exactly, as a nearest-neighbour gather of whole pixels, before the
  resampling, instead of inside it (``rotate90`` only on square images; on others it goes to the resampler with
  everything after it). Images with only blit transformations are therefore exact copies of pixels.
* Borders: reflection about the edge pixels (``F.pad(mode="reflect")``, as the official padding), repeated as far as
  needed; the official code pads by at most the image size and fills beyond with zeros. With blit and geometric
  transformations both active each stage reflects its own input, so the fill outside the original frame can differ
  slightly from the official single pass; inside it the mapping is the same.
* ``p`` may be a number or a 0-dim tensor (ADA keeps it on the device). A number or a CPU tensor equal to 0 returns
  the images themselves; a tensor on another device is not read on the host (no synchronisation), and ``p = 0``
  then gives the same values up to grid_sample's float rounding (~1e-6 at 16x16) through the identity pipeline.
* Randomness comes from an optional ``torch.Generator`` (on the images' device); the draws follow the official order
  (value, then whether to apply it) but are not the official random stream.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["POLICIES", "TRANSFORMS", "ada_augment", "parse_ada_policy"]

# Official default strengths (AugmentPipe's keyword defaults).
XINT_MAX = 0.125  # integer translation, relative to the image size
SCALE_STD = 0.2  # log2 std of isotropic scaling
ROTATE_MAX = 1.0  # arbitrary rotation, 1 = full circle
ANISO_STD = 0.2  # log2 std of anisotropic scaling
XFRAC_STD = 0.125  # fractional translation std, relative to the image size
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5  # log2 std
HUE_MAX = 1.0  # hue rotation, 1 = full circle
SATURATION_STD = 1.0  # log2 std
LUMA = 1 / math.sqrt(3)  # each component of the luma axis

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
#: Every transformation, in the order the pipeline applies them.
TRANSFORMS: tuple[str, ...] = BLIT + GEOM + COLOR

#: Policy name -> the transformations it includes.
POLICIES: dict[str, tuple[str, ...]] = {
    "b": BLIT,
    "bg": BLIT + GEOM,
    "bgc": BLIT + GEOM + COLOR,
    "blit": BLIT,
    "geom": GEOM,
    "color": COLOR,
    **{name: (name,) for name in TRANSFORMS},
}
_UNSUPPORTED = ("bgcf", "bgcfn", "bgcfnc", "filter", "noise", "cutout")

_Steps = list[tuple[str, Tensor]]


def parse_ada_policy(policy: str) -> tuple[str, ...]:
    """The transformations of a policy (names from :data:`POLICIES`, comma-separated for a union), in pipeline order.

    ``""`` gives ``()``. Call it in a model's constructor to reject a misspelt policy before training starts.
    """
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        missing = [name for name in unknown if name in _UNSUPPORTED]
        note = " (image-space filtering, noise and cutout are not implemented)" if missing else ""
        raise ValueError(
            f"Unknown ADA polic{'ies' if len(unknown) > 1 else 'y'} {', '.join(map(repr, unknown))} in {policy!r}"
            f"{note}. Valid names (comma-separated): {', '.join(POLICIES)}."
        )
    chosen = {transform for name in names for transform in POLICIES[name]}
    return tuple(name for name in TRANSFORMS if name in chosen)


# ---------------------------------------------------------------------------------------------------------------------
# Random draws: one per image, on the images' device, from the optional generator.


def _rand(n: int, device: torch.device, generator: torch.Generator | None, *tail: int) -> Tensor:
    return torch.rand((n, *tail), generator=generator, device=device)


def _randn(n: int, device: torch.device, generator: torch.Generator | None, *tail: int) -> Tensor:
    return torch.randn((n, *tail), generator=generator, device=device)


def _where(apply: Tensor, value: Tensor, identity: float) -> Tensor:
    return torch.where(apply, value, torch.full_like(value, identity))


# ---------------------------------------------------------------------------------------------------------------------
# Batched homogeneous matrices, from per-image parameters of shape [N].


def _matrix(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """Stack a nested list of [N] tensors and numbers into [N, R, C]."""
    elems = [e if isinstance(e, Tensor) else torch.full_like(like, e) for row in rows for e in row]
    return torch.stack(elems, dim=-1).reshape(like.shape[0], len(rows), len(rows[0]))


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def _rotate2d(cos: Tensor, sin: Tensor) -> Tensor:
    return _matrix([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], cos)


def _translate3d(t: Tensor) -> Tensor:
    return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], t)


def _scale3d(s: Tensor) -> Tensor:
    return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], s)


def _luma_axis(device: torch.device) -> Tensor:
    """The luma axis (1, 1, 1, 0) / sqrt(3) of homogeneous RGB."""
    return torch.cat([torch.full((3,), LUMA, device=device), torch.zeros(1, device=device)])  # made on the device


def _rotate3d(axis: tuple[float, float, float], theta: Tensor) -> Tensor:
    """Rotation by ``theta`` about the unit ``axis`` (Rodrigues), [N, 4, 4]."""
    vx, vy, vz = axis
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    return _matrix(
        [
            [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
            [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
            [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
            [0, 0, 0, 1],
        ],
        theta,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Parameter sampling. Geometric matrices map output pixels to input pixels (centred pixel coordinates) and are
# composed by right-multiplication in this order; colour matrices map input colours to output colours and are
# composed by left-multiplication.


def _sample_geometric(
    names: tuple[str, ...], n: int, h: int, w: int, p: Tensor, generator: torch.Generator | None, device: torch.device
) -> _Steps:
    """The inverse geometric matrices [N, 3, 3] of the policy, in the order they compose."""
    steps: _Steps = []

    def apply() -> Tensor:
        return _rand(n, device, generator) < p

    if "xflip" in names:
        i = torch.floor(_rand(n, device, generator) * 2)
        i = _where(apply(), i, 0.0)
        steps.append(("xflip", _scale2d(1 - 2 * i, torch.ones_like(i))))
    if "rotate90" in names:
        k = torch.floor(_rand(n, device, generator) * 4)
        k = _where(apply(), k, 0.0).long()
        # Exact cos and sin of k * 90 degrees (the inverse of a rotation by -k * 90 degrees is one by k * 90).
        # (made on the device from k: a table copied from the host per call would wait for the GPU's queue)
        cos = (1 - k % 2) * (1 - (k // 2) * 2)  # k = 0, 1, 2, 3 -> 1, 0, -1, 0
        sin = (k % 2) * (1 - (k // 2) * 2)  # k = 0, 1, 2, 3 -> 0, 1, 0, -1
        cos, sin = cos.float(), sin.float()
        steps.append(("rotate90", _rotate2d(cos, sin)))
    if "xint" in names:
        t = (_rand(n, device, generator, 2) * 2 - 1) * XINT_MAX
        t = torch.where(_rand(n, device, generator, 1) < p, t, torch.zeros_like(t))
        steps.append(("xint", _translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))))
    if "scale" in names:
        s = torch.exp2(_randn(n, device, generator) * SCALE_STD)
        s = _where(apply(), s, 1.0)
        steps.append(("scale", _scale2d(1 / s, 1 / s)))
    p_rot = 1 - torch.sqrt((1 - p).clamp(0, 1))  # P(pre-rotation or post-rotation) = p

    def rotation() -> Tensor:
        theta = (_rand(n, device, generator) * 2 - 1) * math.pi * ROTATE_MAX
        theta = _where(_rand(n, device, generator) < p_rot, theta, 0.0)
        return _rotate2d(torch.cos(theta), torch.sin(theta))

    if "rotate" in names:
        steps.append(("rotate", rotation()))
    if "aniso" in names:
        s = torch.exp2(_randn(n, device, generator) * ANISO_STD)
        s = _where(apply(), s, 1.0)
        steps.append(("aniso", _scale2d(1 / s, s)))
    if "rotate" in names:
        steps.append(("rotate", rotation()))
    if "xfrac" in names:
        t = _randn(n, device, generator, 2) * XFRAC_STD
        t = torch.where(_rand(n, device, generator, 1) < p, t, torch.zeros_like(t))
        steps.append(("xfrac", _translate2d(-t[:, 0] * w, -t[:, 1] * h)))
    return steps


def _sample_color(
    names: tuple[str, ...], n: int, channels: int, p: Tensor, generator: torch.Generator | None, device: torch.device
) -> _Steps:
    """The colour matrices [N, 4, 4] of the policy, in the order they compose (hue and saturation need RGB)."""
    steps: _Steps = []
    v = _luma_axis(device)
    vv = torch.outer(v, v)
    eye = torch.eye(4, device=device)

    def apply() -> Tensor:
        return _rand(n, device, generator) < p

    if "brightness" in names:
        b = _randn(n, device, generator) * BRIGHTNESS_STD
        steps.append(("brightness", _translate3d(_where(apply(), b, 0.0))))
    if "contrast" in names:
        c = torch.exp2(_randn(n, device, generator) * CONTRAST_STD)
        steps.append(("contrast", _scale3d(_where(apply(), c, 1.0))))
    if "lumaflip" in names:
        i = torch.floor(_rand(n, device, generator) * 2)
        i = _where(apply(), i, 0.0)
        steps.append(("lumaflip", eye - 2 * vv * i[:, None, None]))  # Householder reflection of the luma axis
    if "hue" in names and channels > 1:
        theta = (_rand(n, device, generator) * 2 - 1) * math.pi * HUE_MAX
        steps.append(("hue", _rotate3d((LUMA,) * 3, _where(apply(), theta, 0.0))))
    if "saturation" in names and channels > 1:
        s = torch.exp2(_randn(n, device, generator) * SATURATION_STD)
        s = _where(apply(), s, 1.0)
        steps.append(("saturation", vv + (eye - vv) * s[:, None, None]))
    return steps


def _compose(steps: _Steps, *, left: bool = False) -> Tensor:
    """The product of the matrices of ``steps``: ``M1 @ M2 @ ...``, or ``... @ M2 @ M1`` when ``left``."""
    out = steps[0][1]
    for _, m in steps[1:]:
        out = m @ out if left else out @ m
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Execution.


def _reflect(index: Tensor, size: int) -> Tensor:
    """Map integer pixel indices into ``[0, size)`` by mirroring about the edge pixels, as often as needed."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)


def _source_coords(matrix: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """For each output pixel, its source (x, y) in input pixel indices, each [N, H*W]."""
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ys, xs = torch.meshgrid(
        torch.arange(h, device=matrix.device, dtype=matrix.dtype) - cy,
        torch.arange(w, device=matrix.device, dtype=matrix.dtype) - cx,
        indexing="ij",
    )
    grid = torch.stack([xs.flatten(), ys.flatten(), torch.ones_like(xs).flatten()])  # [3, H*W]
    src = matrix[:, :2, :] @ grid  # [N, 2, H*W]
    return src[:, 0] + cx, src[:, 1] + cy


def _sample(x: Tensor, xs: Tensor, ys: Tensor, mode: str) -> Tensor:
    """``grid_sample`` at pixel-index coordinates [N, H*W]; ``align_corners=True`` puts -1 and 1 on the edge pixels,
    so its reflection mirrors about them (as ``F.pad(mode="reflect")``)."""
    n, _, h, w = x.shape
    gx = xs * (2 / (w - 1)) - 1 if w > 1 else torch.zeros_like(xs)
    gy = ys * (2 / (h - 1)) - 1 if h > 1 else torch.zeros_like(ys)
    grid = torch.stack([gx, gy], dim=-1).reshape(n, h, w, 2).to(x.dtype)
    return F.grid_sample(x, grid, mode=mode, padding_mode="reflection", align_corners=True)


def _blit(x: Tensor, matrix: Tensor) -> Tensor:
    """Apply an inverse geometric matrix that maps pixel centres to pixel centres, by copying whole pixels."""
    _, _, h, w = x.shape
    xs, ys = _source_coords(matrix.float(), h, w)  # exact: entries 0 and +-1, integer shifts, half-integer centres
    cols, rows = _reflect(xs.round().long(), w), _reflect(ys.round().long(), h)
    return _sample(x, cols.to(x.dtype), rows.to(x.dtype), "nearest")


def _resample(x: Tensor, matrix: Tensor) -> Tensor:
    """Apply inverse geometric matrices [N, 3, 3] by bilinear sampling, mirrored about the edge pixels."""
    _, _, h, w = x.shape
    xs, ys = _source_coords(matrix.to(x.dtype), h, w)
    return _sample(x, xs, ys, "bilinear")


def _apply_color(x: Tensor, matrix: Tensor) -> Tensor:
    """Apply homogeneous colour matrices [N, 4, 4] to RGB images, or their row average to 1-channel images."""
    n, c, h, w = x.shape
    matrix = matrix.to(x.dtype)
    flat = x.reshape(n, c, h * w)
    if c == 3:
        out = matrix[:, :3, :3] @ flat + matrix[:, :3, 3:]
    else:
        row = matrix[:, :3, :].mean(dim=1, keepdim=True)  # [N, 1, 4]
        out = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
    return out.reshape(n, c, h, w)


def _is_blit(name: str, h: int, w: int) -> bool:
    return name in ("xflip", "xint") or (name == "rotate90" and h == w)


def ada_augment(
    images: Tensor, p: float | Tensor, policy: str = "bgc", generator: torch.Generator | None = None
) -> Tensor:
    """Apply ADA's augmentations to a batch of images [N, C, H, W]; twice differentiable with respect to them.

    Args:
        images: images in [-1, 1]; any number of channels for blit and geometric transformations, 1 or 3 for colour
            ones. float32 and bfloat16 are computed in float32 (float64 in float64) and returned in their dtype.
        p: the probability of each transformation, drawn independently per image and per transformation (ADA's
            adaptive strength), a number or a 0-dim tensor; values above 1 act as 1. ``p = 0`` returns ``images``
            itself, except for a tensor on an accelerator, which is never read on the host (equal values up to
            float rounding then).
        policy: names from :data:`POLICIES`, comma-separated for a union (``"bgc"`` is the paper's default).
        generator: optional source of randomness, on ``images``' device, for reproducible augmentation.
    """
    names = parse_ada_policy(policy)
    if images.ndim != 4:
        raise ValueError(f"ada_augment expects images [N, C, H, W], got shape {tuple(images.shape)}")
    if not isinstance(p, Tensor) or p.device.type == "cpu":  # reading a device tensor would wait for the device
        if not float(p) >= 0:
            raise ValueError(f"augmentation probability p must be >= 0, got {float(p)}")
        if float(p) == 0:
            return images
    if not names:
        return images
    if images.shape[1] not in (1, 3) and any(name in COLOR for name in names):
        raise ValueError(f"colour transformations need 1- or 3-channel images, got {images.shape[1]} channels")
    prob = torch.as_tensor(p, dtype=torch.float32, device=images.device).detach()
    return _augment(images, prob, names, generator)


def _augment(images: Tensor, p: Tensor, names: tuple[str, ...], generator: torch.Generator | None) -> Tensor:
    """The pipeline: sample every transformation's parameters, copy the blit ones, resample, recolour."""
    n, c, h, w = images.shape
    device = images.device
    dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    x = images.to(dtype)

    steps = _sample_geometric(names, n, h, w, p, generator, device)
    exact = 0
    while exact < len(steps) and _is_blit(steps[exact][0], h, w):
        exact += 1
    if exact:
        x = _blit(x, _compose(steps[:exact]))
    if exact < len(steps):
        x = _resample(x, _compose(steps[exact:]))

    color = _sample_color(names, n, c, p, generator, device)
    if color:
        x = _apply_color(x, _compose(color, left=True))
    return x.to(images.dtype).contiguous()
