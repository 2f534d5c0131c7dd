"""The natural images a PDN teacher is distilled on (EfficientAD's, MHKD's), and how a
training pair is drawn; EfficientAD's penalty draws from them too.

- a folder the user points at (``<method>.distill_root``; ImageNet's train folder in the
  paper): every image file under it, recursively, decoded when drawn;
- offline, by default: the photographs bundled with scikit-image (a fixed list of 16 —
  an astronaut, a cat, coffee, coins, bricks, grass, gravel, a rocket, a motorcycle, …;
  no download), said on every page.

A draw (seeded per batch, so that worker processes can decode ahead of the training
loop and still give the same batches: :class:`PairBatches`): an image, a random crop of
25–100 % of its area at aspect 3/4–4/3, a horizontal flip with probability ½, grey with
probability 0.1 (the reference's ``RandomGrayscale(0.1)``), resized (bilinear,
antialiased) to the PDN's input size S and to 2S for the source network, as the
reference feeds the same image at 256 and 512. The crops and flips are this package's
(the reference resizes whole ImageNet images): with a few photographs they are what
makes the draws differ.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from multiad.data.errors import DataError
from multiad.data.image_io import read_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
SMALL_SET = 256  # image sets up to this size are decoded once and kept in memory
SKIMAGE_PHOTOGRAPHS = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png",
                       "coffee.png", "coins.png", "grass.png", "gravel.png",
                       "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png",
                       "motorcycle_right.png", "retina.jpg", "rocket.jpg")


def skimage_photographs() -> list[Path]:
    """The bundled photographs' paths (scikit-image is a dependency of the package)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    paths = [folder / name for name in SKIMAGE_PHOTOGRAPHS]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise DataError(f"scikit-image's bundled photographs {missing} are missing from "
                        f"{folder}; reinstall scikit-image, or set <method>.distill_root to a "
                        "folder of natural images")
    return paths


def image_files(root: str | Path | None) -> list[Path]:
    """The distillation images: every image under ``root``, or the bundled photographs."""
    if root is None:
        return skimage_photographs()
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"distill_root {root} is not a folder; point it at a folder of "
                        "natural images (ImageNet's train folder in the paper), or unset it "
                        "for the bundled photographs")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"distill_root {root} holds no image files "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def describe(root: str | Path | None, files: list[Path]) -> dict[str, object]:
    """What the teacher was distilled on, for every page: the source and a digest of its
    file list (names, sizes and modification times)."""
    h = hashlib.sha256()
    base = files[0].parent if root is None else Path(root).expanduser()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(base)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    if root is None:
        import skimage

        where = f"the {len(files)} photographs bundled with scikit-image {skimage.__version__}"
    else:
        where = f"{len(files)} images under {Path(root).expanduser().resolve()}"
    return {"distilled_on": where, "images": len(files), "files_sha256": h.hexdigest()}


def _crop_box(h: int, w: int, g: torch.Generator) -> tuple[int, int, int, int]:
    """A random crop of 25–100 % of the area at aspect 3/4–4/3 (top, left, height, width)."""
    for _ in range(10):
        area = h * w * (0.25 + 0.75 * float(torch.rand((), generator=g)))
        log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * float(
            torch.rand((), generator=g))
        cw = round(math.sqrt(area * math.exp(log_r)))
        ch = round(math.sqrt(area / math.exp(log_r)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (), generator=g))
            left = int(torch.randint(0, w - cw + 1, (), generator=g))
            return top, left, ch, cw
    return 0, 0, h, w


class PairBatches(torch.utils.data.Dataset):
    """Batch ``k`` of seeded draws: (PDN input n×3×S×S, source input n×3×2S×2S), float
    [0, 1]. Each batch has its own generator, seeded by (``seed``, ``k``), so a batch is
    the same whichever process decodes it and in whatever order: a ``DataLoader`` with
    any number of workers (:func:`batches`) gives bit-identical draws."""

    def __init__(self, files: list[Path], size: int, seed: int, batch_size: int,
                 with_source: bool = True) -> None:
        """``with_source`` False: the PDN's input only (EfficientAD's penalty draws); the
        source input comes back empty, the draws themselves are the same."""
        self.files, self.size, self.seed, self.batch_size = files, size, seed, batch_size
        self.sides = (size, 2 * size) if with_source else (size,)
        self._cache: dict[int, torch.Tensor] = {}  # decoded images (small sets only)

    def __len__(self) -> int:  # batches are indexed without end; a sampler picks a range
        return 2**62

    def _image(self, i: int) -> torch.Tensor:
        if i in self._cache:
            return self._cache[i]
        img = torch.from_numpy(read_image(self.files[i])).permute(2, 0, 1)
        if len(self.files) <= SMALL_SET:
            self._cache[i] = img
        return img

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(
            f"{self.seed}:{k}".encode()).digest()[:8], "little") >> 1)
        small, large = [], []
        for _ in range(self.batch_size):
            img = self._image(int(torch.randint(0, len(self.files), (), generator=g)))
            top, left, ch, cw = _crop_box(img.shape[1], img.shape[2], g)
            crop = img[:, top:top + ch, left:left + cw]
            if float(torch.rand((), generator=g)) < 0.5:
                crop = crop.flip(-1)
            if float(torch.rand((), generator=g)) < 0.1:
                grey = (0.299 * crop[0] + 0.587 * crop[1] + 0.114 * crop[2])[None]
                crop = grey.expand(3, -1, -1)
            crop = crop[None]
            for out, side in zip((small, large), self.sides, strict=False):
                out.append(F.interpolate(crop, size=(side, side), mode="bilinear",
                                         antialias=True, align_corners=False)[0])
        return torch.stack(small).clamp(0, 1), \
            torch.stack(large).clamp(0, 1) if large else torch.empty(0)


def default_workers(n_files: int) -> int:
    """Decoding processes for ``distill_workers=None``: none for a small set (decoded
    once, kept in memory), else up to 4 of the cores this process may use, one left for
    the training loop. Each worker holds up to two finished batches in shared memory
    (``/dev/shm``; 32 draws at 256 and 512 px are about 126 MB): a container needs a
    ``--shm-size`` of ~1 GB for four."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 2)
    return 0 if n_files <= SMALL_SET else max(1, min(4, cores - 1))


def batches(pairs: PairBatches, start: int, stop: int, workers: int, pin: bool = False
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches ``start`` … ``stop − 1`` of ``pairs`` in order, decoded by ``workers``
    processes ahead of the loop (0: in this process). The loader gets a generator of its
    own, so building it does not draw from the global random state."""
    loader = torch.utils.data.DataLoader(
        pairs, batch_size=None, sampler=range(start, stop), num_workers=workers,
        pin_memory=pin, prefetch_factor=2 if workers else None,
        generator=torch.Generator().manual_seed(0))
    yield from loader
