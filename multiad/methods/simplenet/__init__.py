"""SimpleNet (Liu et al., CVPR 2023, "SimpleNet: A Simple Network for Image Anomaly
Detection and Localization"); reference code DonaldRR/SimpleNet (MIT: implemented here from
the paper and the facts of ``shared/docs/BASELINES.md``, no code taken).

| paper | module |
| --- | --- |
| §3.1 feature extractor: layer2+3 patch features (PatchCore's, 1536-d) | ``torch_model.py`` |
| §3.2 feature adaptor: one linear layer | ``torch_model.py`` (``Adaptor``) |
| §3.3 anomalous features: q + ε, ε ~ N(0, σ²) | ``loss.py`` (``synthetic_anomalies``) |
| §3.4 discriminator: linear–BN–LeakyReLU–linear | ``torch_model.py`` (``Discriminator``) |
| §3.5 truncated L1 ("hinge") loss, margin 0.5 | ``loss.py`` |
| §3.6 scores: −D(q) per patch, upsampled, smoothed; image score the maximum | ``anomaly_map.py`` |
| settings (Adam 2e-4, AdamW 1e-4, σ = 0.015, 40 × 4 epochs, batch 8) | ``config.py`` |
"""
