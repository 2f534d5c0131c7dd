"""RD4AD (Deng & Li, CVPR 2022, "Anomaly Detection via Reverse Distillation from One-Class
Embedding"); reference code hq-deng/RD4AD (MIT).

| paper | module |
| --- | --- |
| §3.1 frozen encoder E (WRN-50-2, layers 1–3) | ``multiad.backbones`` |
| §3.2 one-class bottleneck embedding (OCBE: MFF + OCE) | ``torch_model.py`` (``OCBE``) |
| §3.1 student decoder D (reverse WRN-50-2) | ``torch_model.py`` (``ReverseDecoder``) |
| Eq. 2–3 loss Σ_k (1 − cos) of the flattened feature maps | ``loss.py`` |
| Eq. 4–5 map Σ_k up(1 − cos), Gaussian σ = 4, score = max | ``anomaly_map.py`` |
| settings (Adam 0.005, betas (0.5, 0.999), batch 16, 200 epochs) | ``config.py`` |
"""
