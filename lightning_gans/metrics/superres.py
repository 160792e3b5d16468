"""Super-resolution metrics as the SR literature computes them: PSNR and SSIM on the Y channel, border cropped.

The convention (SRGAN, ESRGAN, EDSR...; BasicSR's ``calculate_psnr``/``calculate_ssim`` with ``test_y_channel`` and
``crop_border = scale``, which reproduce the MATLAB scripts):

- images are 8-bit (the SR output is rounded to 0..255, as when it is saved as PNG);
- ``scale`` pixels are cropped at every border of both images (the borders of an upscaled image lack context);
- Y is the luma of ITU-R BT.601 YCbCr in the "studio" range, ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for R,
  G, B in [0, 1] (MATLAB's ``rgb2ycbcr``), so Y lies in [16, 235] / 255;
- PSNR = ``10 log10(1 / MSE)`` on [0, 1] values, per image, then averaged over images;
- SSIM (Wang et al. 2004) with an 11x11 Gaussian window of sigma 1.5, ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``
  (L = 1 here), averaged over the "valid" positions only (no padding) and the channels. (torchmetrics' SSIM has the
  same map but also averages the positions of its reflect-padded border, so its values differ slightly.)

``sr_scores`` gives all four numbers per image (Y and RGB); :class:`SRMetrics` averages them over a validation epoch
(torchmetrics means, synchronised under DDP). ``ssim`` is differentiable, so ``1 - ssim`` doubles as a weight-free
training loss (:mod:`lightning_gans.perceptual`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

#: BT.601 luma weights for R, G, B in [0, 1] giving Y in [0, 255] (plus the offset 16), MATLAB's rgb2ycbcr.
Y_WEIGHTS = (65.481, 128.553, 24.966)
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SCORES = ("psnr_y", "ssim_y", "psnr", "ssim")


def to_unit(x: Tensor, quantize: bool = True) -> Tensor:
    """Images in [-1, 1] -> [0, 1] float32 (clamped), rounded to 8 bits when ``quantize`` (as a saved PNG)."""
    x = ((x.float().clamp(-1, 1) + 1) / 2).clamp(0, 1)
    return (x * 255).round() / 255 if quantize else x


def rgb_to_y(x: Tensor) -> Tensor:
    """RGB in [0, 1], [N, 3, H, W] -> BT.601 luma Y in [16/255, 235/255], [N, 1, H, W] (MATLAB ``rgb2ycbcr``)."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"rgb_to_y needs RGB images [N, 3, H, W], got shape {tuple(x.shape)}")
    weights = torch.tensor(Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * weights).sum(1, keepdim=True) + 16.0) / 255.0


def crop_border(x: Tensor, border: int) -> Tensor:
    """``x`` without ``border`` pixels at each of its four edges."""
    if border == 0:
        return x
    if min(x.shape[-2:]) <= 2 * border:
        raise ValueError(f"cannot crop {border} pixels from each border of {x.shape[-2]}x{x.shape[-1]} images")
    return x[..., border:-border, border:-border]


def psnr(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image PSNR in dB, [N] float32, of images [N, C, H, W] (MSE over C, H, W, in float64); identical images
    give 100 dB (the MSE is floored at 1e-10)."""
    if a.shape != b.shape:
        raise ValueError(f"psnr of images of different shapes {tuple(a.shape)} and {tuple(b.shape)}")
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(data_range**2 / mse.clamp_min(1e-10))).float()


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, dtype=torch.float32, device=None) -> Tensor:
    """The normalised 2-D Gaussian window [size, size] (the outer product of the 1-D one)."""
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).to(dtype)


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image SSIM, [N], of images [N, C, H, W]: 11x11 Gaussian window (sigma 1.5), valid positions only, mean
    over channels and positions. Differentiable. Images must be at least 11x11."""
    if a.shape != b.shape:
        raise ValueError(f"ssim of images of different shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} (after border cropping), "
            f"got {a.shape[-2]}x{a.shape[-1]}"
        )
    channels = a.shape[1]
    dtype = torch.float32 if a.dtype in (torch.float16, torch.bfloat16) else a.dtype
    a, b = a.to(dtype), b.to(dtype)
    window = gaussian_window(dtype=dtype, device=a.device).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, window, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.flatten(1).mean(1)


@torch.no_grad()
def sr_scores(sr: Tensor, hr: Tensor, scale: int) -> dict[str, Tensor]:
    """PSNR and SSIM of SR images against HR images, both [N, 3, H, W] in [-1, 1], per image ([N] float32 each,
    computed in float64 as BasicSR does):
    ``psnr_y``, ``ssim_y`` (Y channel) and ``psnr``, ``ssim`` (RGB), all on 8-bit values with ``scale`` pixels
    cropped at each border (see the module docstring)."""
    if sr.shape != hr.shape:
        raise ValueError(f"SR output {tuple(sr.shape)} and HR target {tuple(hr.shape)} differ in shape")
    sr_u, hr_u = crop_border(to_unit(sr).double(), scale), crop_border(to_unit(hr).double(), scale)
    sr_y, hr_y = rgb_to_y(sr_u), rgb_to_y(hr_u)
    scores = {
        "psnr_y": psnr(sr_y, hr_y),
        "ssim_y": ssim(sr_y, hr_y),
        "psnr": psnr(sr_u, hr_u),
        "ssim": ssim(sr_u, hr_u),
    }
    return {k: v.float() for k, v in scores.items()}


class SRMetrics(nn.Module):
    """Epoch means of :func:`sr_scores` (per-image values averaged over all images, synchronised under DDP).

    Args:
        scale: the border crop (the upscaling factor).
        names: which outputs are scored, e.g. ``("", "bicubic")``: ``""`` logs ``psnr_y``..., ``"bicubic"`` logs
            ``psnr_y_bicubic``...
    """

    def __init__(self, scale: int, names: tuple[str, ...] = ("",)) -> None:
        super().__init__()
        self.scale = scale
        self.means = nn.ModuleDict({self.key(s, n): MeanMetric() for n in names for s in SCORES})

    @staticmethod
    def key(score: str, name: str) -> str:
        return f"{score}_{name}" if name else score

    def update(self, sr: Tensor, hr: Tensor, name: str = "") -> None:
        for score, values in sr_scores(sr, hr, self.scale).items():
            self.means[self.key(score, name)].update(values)

    def log(self, module, batch_size: int, prefix: str = "val") -> None:
        for key, metric in self.means.items():
            module.log(
                f"{prefix}/{key}", metric, on_step=False, on_epoch=True, batch_size=batch_size, prog_bar=key == "psnr_y"
            )


__all__ = ["SCORES", "SRMetrics", "crop_border", "gaussian_window", "psnr", "rgb_to_y", "sr_scores", "ssim", "to_unit"]
