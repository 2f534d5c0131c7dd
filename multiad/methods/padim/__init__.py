"""PaDiM (Defard et al., ICPR 2021, "PaDiM: a Patch Distribution Modeling Framework for
Anomaly Detection and Localization"); reference code xiahaifeng1995/PaDiM (Apache-2.0),
the authors having published none.

| paper | module |
| --- | --- |
| §3.1 embedding: layers 1–3 concatenated, random channel subset | ``torch_model.py`` |
| §3.2 per-position Gaussian N(μ_ij, Σ_ij), Σ + εI | ``torch_model.py`` (``GaussianStats``) |
| §3.3 Mahalanobis distance M(x_ij), upsampling, Gaussian smoothing | ``anomaly_map.py`` |
| settings (layers, d = 550, ε = 0.01, σ = 4) | ``config.py`` |
"""
