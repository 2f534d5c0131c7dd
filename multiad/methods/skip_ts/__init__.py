"""Skip-TS (Liu et al., "Anomaly Detection for Medical Images Using Teacher-Student Model
with Skip Connections and Multi-scale Anomaly Consistency"; a related
system of the paper); reference code Arktis2022/Skip-TS (no licence: not copied).

| paper | module |
| --- | --- |
| §III-B T-Net: frozen encoder E1–E4 (WRN-50-2 layer1–4) | ``multiad.backbones`` |
| §III-B S-Net: decoder D3–D1, symmetric, fed from E4 (DRKD) | ``torch_model.py`` |
| §III-C skip connections: D_j decodes F_t^{j+1} + F_s^{j+1} | ``SkipTSModel.reconstruct`` |
| Eq. 1 layer map M_l = 1 − cos along channels | ``anomaly_map.py`` (``layer_maps``) |
| Eqs. 2–3 similarity loss L_sim | ``loss.py`` (``similarity_loss``) |
| Eq. 4 multi-scale anomaly consistency L_mac | ``loss.py`` (``mac_loss_maps``) |
| the code's L_mac (MSE gaps between scales) | ``loss.py`` (``mac_loss_mse_gaps``) |
| Eq. 5 L_DRKD = α·L_sim + β·L_mac (α 1, β 0.05) | ``loss.py`` (``drkd_loss``) |
| Eqs. 7–8 M_ano = Σ_l up(M_l), G_σ (σ 4), S_AD = max | ``anomaly_map.py`` |
| §IV-B settings (Adam 0.005, betas (0.5, 0.999), batch 16, 200 epochs) | ``config.py`` |
"""
