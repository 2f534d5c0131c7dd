"""EfficientAD (Batzner, Heckler & König, WACV 2024, "EfficientAD: Accurate Visual Anomaly
Detection at Millisecond-Level Latencies"), a modern peer beyond the paper's methods; no
official code: its choices were checked against the public reimplementations
nelson1425/EfficientAD and anomalib's (both Apache-2.0; no code taken). MHKD builds on it
and shares its teacher, its normalisation and its training rules.

| paper | module |
| --- | --- |
| §3.1 patch description network (PDN), -S and -M | ``pdn.py`` |
| §3.1 the PDN teacher distilled from an ImageNet network, cached | ``distill.py`` |
| the natural images it is distilled on (and the penalty's) | ``distill_data.py`` |
| §3.2 Eq. 1–2 hard feature loss, penalty | ``loss.py`` |
| §3.3 autoencoder, augmentation, L_AE, L_STAE | ``autoencoder.py``, ``augment.py``, ``loss.py`` |
| §3.4 quantile map normalisation, combined map, score | ``anomaly_map.py`` |
| teacher normalisation, held-out validation, Adam and its drop | ``student_teacher.py`` |
| §4 training step | ``trainer.py`` |
| T + S + A at test time | ``torch_model.py`` |
| settings (-S/-M: ``efficientad.pdn``) and the method contract | ``config.py``, ``method.py`` |
"""
