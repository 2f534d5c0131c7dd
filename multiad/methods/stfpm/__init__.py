"""STFPM (Wang et al., BMVC 2021, "Student-Teacher Feature Pyramid Matching for Anomaly
Detection"); reference code gdwang08/STFPM (GPL-3.0: implemented here from the paper and
the facts of ``shared/docs/BASELINES.md``, no code taken).

| paper | module |
| --- | --- |
| §3.1 teacher and student of one architecture (ResNet-18), layers 1–3 | ``trainer.py`` |
| Eq. 1–2 loss: per layer ‖F̂_t − F̂_s‖², summed over layers | ``loss.py`` |
| Eq. 3–4 map: per layer ½‖F̂_t − F̂_s‖², upsampled, multiplied | ``anomaly_map.py`` |
| settings (SGD 0.4, momentum 0.9, weight decay 1e-4, batch 32, 100 epochs) | ``config.py`` |
"""
