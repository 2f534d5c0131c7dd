"""Gaussian smoothing G_θ of the fused map (Eq. 15; σ = 4, kernel 33 by default)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kernel_size_for(sigma: float) -> int:
    """2·⌈4σ⌉ + 1: 33 for σ = 4 (the common RD4AD/anomalib/BMAD choice)."""
    return 2 * int(torch.tensor(4.0 * sigma).ceil().item()) + 1


def gaussian_kernel1d(sigma: float, size: int | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian taps exp(−x²/2σ²) / Σ."""
    size = size or kernel_size_for(sigma)
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype)


_KERNELS: dict[tuple[float, int, torch.dtype, torch.device], torch.Tensor] = {}


def _device_kernel(sigma: float, size: int | None, dtype: torch.dtype,
                   device: torch.device) -> torch.Tensor:
    key = (sigma, size or kernel_size_for(sigma), dtype, device)
    if key not in _KERNELS:
        _KERNELS[key] = gaussian_kernel1d(sigma, key[1], dtype).to(device)
    return _KERNELS[key]


def gaussian_blur(maps: torch.Tensor, sigma: float = 4.0, size: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur of N×1×H×W (or N×H×W) maps with reflect padding.

    On maps smaller than the kernel (tiny test images, large σ) the taps are truncated to
    2·min(H, W) − 1 and renormalised, since reflect padding must stay inside the map.
    """
    if sigma <= 0:
        return maps
    squeeze = maps.dim() == 3
    x = maps[:, None] if squeeze else maps
    size = min(size or kernel_size_for(sigma), 2 * min(x.shape[-2:]) - 1)
    k = _device_kernel(sigma, size, x.dtype, x.device)
    pad = k.numel() // 2
    x = F.pad(x, (pad, pad, 0, 0), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, pad, pad), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x[:, 0] if squeeze else x
