"""PatchCore (Roth et al., CVPR 2022, "Towards Total Recall in Industrial Anomaly
Detection"); reference code amazon-science/patchcore-inspection (Apache-2.0).

| paper | module |
| --- | --- |
| §3.1 locally aware patch features (layers 2+3, 3×3 neighbourhood) | ``torch_model.py`` |
| §3.2 coreset subsampling (approximate greedy, random projection) | ``sampler.py`` |
| §3.3 nearest-neighbour anomaly score | ``nn_search.py``, ``anomaly_map.py`` |
| settings (1024-d, 10 %, 128-d projection, k = 1, σ = 4) | ``config.py`` |
"""
