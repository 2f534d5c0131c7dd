"""Every anomaly-detection method of the package, each one folder that declares itself
(:mod:`multiad.methods.contract`) and is found by the registry
(:mod:`multiad.methods.registry`): no file lists them.

| name | paper | kind | reference teacher |
| --- | --- | --- | --- |
| ``multiad`` | Multi-AD (Rahmaniar & Suzuki, arXiv 2602.05426) | trained | WRN-50-2 |
| ``padim`` | PaDiM (Defard et al., ICPR 2021) | fitted | WRN-50-2 |
| ``patchcore`` | PatchCore (Roth et al., CVPR 2022) | fitted | WRN-50-2 |
| ``stfpm`` | STFPM (Wang et al., BMVC 2021) | trained | ResNet-18 |
| ``rd4ad`` | RD4AD (Deng & Li, CVPR 2022) | trained | WRN-50-2 |
| ``simplenet`` | SimpleNet (Liu et al., CVPR 2023) | trained | WRN-50-2 |
| ``mkd`` | MKD (Salehi et al., CVPR 2021) | trained | VGG-16 |
| ``skip_ts`` | Skip-TS (Liu, Jiao, Lu & Chen; related system) | trained | WRN-50-2 |
| ``mhkd`` | MHKD (multi-task hybrid KD; related system) | trained | WRN-101-2 (distilled) |
| ``efficientad`` | EfficientAD (Batzner et al., WACV 2024; peer) | trained | WRN-101-2 (dist.) |

A method of your own joins from your own package through the entry-point group
``multiad.methods`` (``examples/gaussian_method/`` is a worked one).
"""

from __future__ import annotations

from multiad.methods.base import AnomalyOutput, InferenceModel, MapCombiner
from multiad.methods.registry import METHODS, all_methods, get_method

__all__ = ["METHODS", "AnomalyOutput", "InferenceModel", "MapCombiner", "all_methods",
           "get_method"]
