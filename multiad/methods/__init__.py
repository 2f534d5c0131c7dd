"""Every anomaly-detection method of the package, by name, behind one interface
(:mod:`multiad.methods.base`).

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

A method's module (``multiad/methods/<name>/``) provides ``build(cfg, device)`` (a
:class:`~multiad.engine.trainer.TrainerBase` for a trained method), ``load(cfg, blob,
device, overrides)`` (an :class:`~multiad.methods.base.InferenceModel` from ``model.pt``)
and ``combiner(cfg, meta)`` (its map combination, for figures rebuilt from stored maps).
"""

from __future__ import annotations

from multiad.methods.base import AnomalyOutput, InferenceModel, MapCombiner, MethodSpec

METHODS: dict[str, MethodSpec] = {s.name: s for s in (
    MethodSpec(
        "multiad", "Multi-AD", "trained", "wide_resnet50_2", "multiad.methods.multiad.method",
        section="model", layer_names=("M1", "M2", "M3", "M4"),
        schedule={"epochs": 250, "batch_size": 16, "lr": 1e-3, "betas": (0.9, 0.999)},
        reference="Rahmaniar & Suzuki, arXiv 2602.05426 (the paper reproduced here)",
        eval_only_keys=("mff", "mff_relu", "map_fusion", "sigma")),
    MethodSpec(
        "padim", "PaDiM", "fitted", "wide_resnet50_2", "multiad.methods.padim.method",
        section="padim", layer_names=("mahalanobis",), schedule={"batch_size": 32},
        reference="Defard et al., ICPR 2021; code: xiahaifeng1995/PaDiM (Apache-2.0)",
        eval_only_keys=("sigma",)),
    MethodSpec(
        "patchcore", "PatchCore", "fitted", "wide_resnet50_2",
        "multiad.methods.patchcore.method", section="patchcore", layer_names=("patch_score",),
        schedule={"batch_size": 8},
        reference="Roth et al., CVPR 2022; code: amazon-science/patchcore-inspection "
                  "(Apache-2.0)", eval_only_keys=("sigma",)),
    MethodSpec(
        "stfpm", "STFPM", "trained", "resnet18", "multiad.methods.stfpm.method",
        section="stfpm", layer_names=("L1", "L2", "L3"),
        schedule={"epochs": 100, "batch_size": 32, "lr": 0.4},
        reference="Wang et al., BMVC 2021; code: gdwang08/STFPM (GPL-3.0; not copied)"),
    MethodSpec(
        "rd4ad", "RD4AD", "trained", "wide_resnet50_2", "multiad.methods.rd4ad.method",
        section="rd4ad", layer_names=("L1", "L2", "L3"),
        schedule={"epochs": 200, "batch_size": 16, "lr": 0.005, "betas": (0.5, 0.999)},
        reference="Deng & Li, CVPR 2022; code: hq-deng/RD4AD (MIT)", eval_only_keys=("sigma",)),
    MethodSpec(
        "simplenet", "SimpleNet", "trained", "wide_resnet50_2",
        "multiad.methods.simplenet.method", section="simplenet", layer_names=("patch_score",),
        # 40 meta epochs × 4 discriminator epochs; lr: the discriminator's Adam
        schedule={"epochs": 160, "batch_size": 8, "lr": 2e-4, "betas": (0.9, 0.999)},
        reference="Liu et al., CVPR 2023; code: DonaldRR/SimpleNet (MIT)",
        eval_only_keys=("sigma",)),
    MethodSpec(
        "mkd", "MKD", "trained", "vgg16", "multiad.methods.mkd.method", section="mkd",
        layer_names=("map",),
        schedule={"epochs": 601, "batch_size": 64, "lr": 1e-3, "betas": (0.9, 0.999)},
        reference="Salehi et al., CVPR 2021; code: rohban-lab/Knowledge_Distillation_AD "
                  "(no licence; not copied)", eval_only_keys=("localization", "sigma")),
    MethodSpec(
        "skip_ts", "Skip-TS", "trained", "wide_resnet50_2", "multiad.methods.skip_ts.method",
        section="skip_ts", layer_names=("M1", "M2", "M3"),
        schedule={"epochs": 200, "batch_size": 16, "lr": 0.005, "betas": (0.5, 0.999)},
        reference="Liu, Jiao, Lu & Chen (related system); code: Arktis2022/Skip-TS "
                  "(no licence; not copied)", eval_only_keys=("sigma",)),
    MethodSpec(
        "mhkd", "MHKD", "trained", "wide_resnet101_2", "multiad.methods.mhkd.method",
        section="mhkd", layer_names=("structural", "logical"),
        # 80,000 steps at batch 1 ≈ 226 epochs of a MVTec LOCO AD category (354 images)
        schedule={"epochs": 226, "batch_size": 1, "lr": 1e-4, "betas": (0.9, 0.999)},
        reference="multi-task hybrid KD (related system); code: Xmh-L/MHKD4AD (no "
                  "licence, incomplete; not copied)", eval_only_keys=("sigma",)),
)}


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise ValueError(f"method {name!r} unknown; use one of {', '.join(METHODS)}")
    return METHODS[name]


__all__ = ["METHODS", "AnomalyOutput", "InferenceModel", "MapCombiner", "MethodSpec",
           "get_method"]
