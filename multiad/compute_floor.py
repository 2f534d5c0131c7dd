"""The compute floor of a training image: the rate at which the GPU's tensor cores could do
its arithmetic and nothing else (the book's compute-cost page; ``make bench``).

One training image of Algorithm 1 costs four WRN-50-2 forward passes: T's forward, S's
forward and S's backward (about twice a forward). D, SE and the fusion block add little.
"""

from __future__ import annotations

WRN50_GFLOP_256 = 29.8  # one WRN-50-2 forward at 256² (11.4 GMAC at 224², scaled by area)
TRAIN_FORWARDS = 4  # T forward + S forward + S backward (≈ 2 forwards)

# Dense BF16 tensor-core peak, TFLOP/s, from NVIDIA's data sheets (the sparse figures are
# twice these). First match of the device name wins.
BF16_DATASHEET_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200 NVL", 835.0),
    ("H100", 989.4),  # SXM5: "NVIDIA H100 80GB HBM3"
    ("H200", 989.4),  # SXM
)


def datasheet_tflops(device_name: str) -> float | None:
    """The data-sheet dense BF16 peak of a GPU named ``device_name``, if listed."""
    return next((v for k, v in BF16_DATASHEET_TFLOPS if k in device_name), None)


def measured_bf16_tflops(components: dict) -> float | None:
    """The bf16 GEMM rate a ``make bench`` file's ``components`` measured on a GPU (a CPU's
    fp32 GEMM is no tensor-core rate: None)."""
    return components.get("matmul_tflops") if components.get("matmul_dtype") == "bfloat16" \
        else None


def train_gflop_per_image(size: int = 256) -> float:
    """Arithmetic of one training image at ``size``² (convolutions scale with the area)."""
    return TRAIN_FORWARDS * WRN50_GFLOP_256 * (size / 256) ** 2


def floor_img_per_s(tflops: float, size: int = 256) -> float:
    """Training images per second if every FLOP ran at ``tflops``."""
    return tflops * 1e3 / train_gflop_per_image(size)
