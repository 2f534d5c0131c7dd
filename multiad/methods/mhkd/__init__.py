"""MHKD ("Multi-task Hybrid Knowledge Distillation for Unsupervised Anomaly Detection"; a
related system of the paper); reference code Xmh-L/MHKD4AD (no licence, incomplete: not
copied).

| paper | module |
| --- | --- |
| §III-A teacher F_t: a PDN distilled from an ImageNet network | ``pdn.py``, ``distill.py`` |
| the natural images it is distilled on | ``distill_data.py`` |
| §III-A Eq. 1 f_t, normalised per channel on the training images | ``torch_model.py`` |
| §III-B Eqs. 2, 3, 5 SEncoder1/2, GDecoder, LDecoder | ``student.py`` |
| Eqs. 4, 6, 7, 8 L_G, L_L, L_SG, L_total | ``loss.py`` (``hybrid_loss``) |
| §III-C, Eq. 9 maps A_s, A_g, quantile normalisation, A | ``anomaly_map.py`` |
| §IV-A settings (Adam 1e-4, wd 1e-5, lr ×0.1 at 95 %) | ``config.py``, ``trainer.py`` |
"""
