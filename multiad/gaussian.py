"""Gaussian smoothing G_θ of the fused map (Eq. 15; σ = 4, kernel 33 by default)."""

from __future__ import annotations

import torch


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


_MATRICES: dict[tuple[int, float, int, torch.device], torch.Tensor] = {}


def blur_matrix(length: int, sigma: float, size: int, device: torch.device | str = "cpu"
                ) -> torch.Tensor:
    """The 1-D blur along an axis of ``length`` as a length×length float32 matrix B:
    (B x)_i = Σ_t k_t · x[reflect(i + t − size//2)], reflect padding folded in."""
    key = (length, sigma, size, torch.device(device))
    if key not in _MATRICES:  # built once, outside any inference-mode region (a cached
        # inference tensor could not be used by autograd later)
        if key[3].type == "cuda" and torch.cuda.is_current_stream_capturing():
            raise RuntimeError(
                f"gaussian_blur: no {length}-long blur matrix (σ={sigma}) on {key[3]} yet, "
                "and building one inside CUDA-graph capture would copy from the host. Run "
                "the blur once on maps of this size before capturing (a warm-up step).")
        with torch.inference_mode(False):
            _MATRICES[key] = _build_blur_matrix(length, sigma, size, key[3])
    return _MATRICES[key]


def _build_blur_matrix(length: int, sigma: float, size: int, device: torch.device
                       ) -> torch.Tensor:
    k = gaussian_kernel1d(sigma, size, torch.float64)
    pad = size // 2
    src = torch.arange(length)[:, None] + torch.arange(size)[None, :] - pad
    src = src.abs()  # reflect at the start: −j → j
    src = torch.where(src > length - 1, 2 * (length - 1) - src, src)  # and at the end
    b = torch.zeros(length, length, dtype=torch.float64)
    b.scatter_add_(1, src, k.expand(length, size).contiguous())
    return b.to(device=device, dtype=torch.float32)


def gaussian_blur(maps: torch.Tensor, sigma: float = 4.0, size: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur of N×1×H×W (or N×H×W) maps with reflect padding, in float32.

    Each axis is one matrix product with :func:`blur_matrix` (the same linear map as a
    padded convolution; one GEMM per axis instead of a one-channel convolution, and free
    of autocast: a caller's bf16 region does not round the maps that metrics rank).
    On maps smaller than the kernel (tiny test images, large σ) the taps are truncated to
    2·min(H, W) − 1 and renormalised, since reflect padding must stay inside the map.
    """
    if sigma <= 0:
        return maps
    h, w = maps.shape[-2:]
    size = min(size or kernel_size_for(sigma), 2 * min(h, w) - 1)
    b_h = blur_matrix(h, sigma, size, maps.device)
    b_w = blur_matrix(w, sigma, size, maps.device)
    with torch.autocast(maps.device.type, enabled=False):
        x = (maps.float().reshape(-1, w) @ b_w.T).view(-1, h, w)  # along W: rows
        x = (x.transpose(1, 2).reshape(-1, h) @ b_h.T).view(-1, w, h)  # along H
        return x.transpose(1, 2).reshape(maps.shape)
