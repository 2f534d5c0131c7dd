"""MKD (Salehi et al., CVPR 2021, "Multiresolution Knowledge Distillation for Anomaly
Detection"); reference code rohban-lab/Knowledge_Distillation_AD (no licence: implemented
here from the paper and the facts of ``shared/docs/BASELINES.md``, no code taken).

| paper | module |
| --- | --- |
| §3 teacher VGG-16 at four taps (pool2–pool5); the thinner "cloner" | ``torch_model.py`` |
| Eq. 1–3 loss: L_val (MSE), L_dir (1 − cos, flattened maps), L_dir + λ·L_val | ``loss.py`` |
| §3.2 detection: the loss of one image (last three taps) as its score | ``loss.py`` |
| §3.3 localisation: ∂L/∂x, guided backpropagation (default) or vanilla | ``saliency.py`` |
| interpretation: per-position feature difference at the score taps | ``anomaly_map.py`` |
| settings (Adam 1e-3, batch 64, λ = 0.5 MVTec AD / 0.01 otherwise) | ``config.py`` |
"""
