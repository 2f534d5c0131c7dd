"""The compute page's tables are derived from benchmark JSON files, not typed in."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _summarize():
    if str(ROOT / "benchmarks") not in sys.path:  # as `python benchmarks/summarize.py` runs
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("summarize", ROOT / "benchmarks/summarize.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tables_come_from_the_files(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "GPU_1.json").write_text(json.dumps({
        "profile": "full", "device": "Test GPU", "torch": "9.9", "train_img_per_s_eager": 100.0,
        "train_img_per_s": 400.0, "infer_img_per_s": 1234.5, "pixel_auroc_250M_s": 0.5,
        "aupro_250M_s": 2.25,
        "train_eager_fp32": {"img_per_s": 100.0, "peak_gib": 3.0},
        "train_graphed_x4": {"n_models": 4, "aggregate_img_per_s": 400.0, "peak_gib": 9.0}}))
    mod = _summarize()
    assert mod.main(["--results", str(res), "--out", str(tmp_path / "gen")]) == 0
    text = (tmp_path / "gen" / "compute_tables.md").read_text()
    assert "| 1 | Test GPU | 9.9 | 100.0 | 400.0 | — | 1,234.5 | 0.500 | 2.250 |" in text
    images = sum(mod.TRAIN_IMAGES.values()) * mod.EPOCHS * (1 + mod.ABLATION_EXTRA_TRAININGS)
    assert f"**{images / 400.0 / 3600:.1f} h**" in text


def test_no_results_says_so(tmp_path):
    mod = _summarize()
    (tmp_path / "empty").mkdir()
    mod.main(["--results", str(tmp_path / "empty"), "--out", str(tmp_path / "gen")])
    assert "No benchmark results" in (tmp_path / "gen" / "compute_tables.md").read_text()


def test_cpu_pixel_metrics_are_listed_with_their_memory(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    pm = {"device": "cpu", "n_pixels": 250_019_840, "shift": 0.4, "threads": 2,
          "pixel_auroc_s": 3.93, "aupro_s": 8.13, "peak_rss_gib": 2.84}
    new = {**pm, "pixel_ap_s": 4.5, "pixel_f1_max_s": 4.25, "aupimo_s": 1.0}
    (res / "cpu_2.json").write_text(json.dumps({
        "profile": "small", "device": "Test CPU (2 cores)", "torch": "9.9", "pixel_metrics": pm,
        "pixel_metrics_overlapping": {**pm, "shift": 0.0, "aupro_s": 20.5},
        "train_eager_fp32": {"img_per_s": 4.4}}))
    (res / "cpu_3.json").write_text(json.dumps({
        "profile": "small", "device": "Test CPU (2 cores)", "torch": "9.9",
        "pixel_metrics": new}))
    mod = _summarize()
    mod.main(["--results", str(res), "--out", str(tmp_path / "gen")])
    text = (tmp_path / "gen" / "compute_tables.md").read_text()
    assert ("| 2 | Test CPU (2 cores), 2 threads | 250,019,840 | separated | 3.93 | 8.13 | "
            "— | — | — | 2.84 GiB") in text  # measured before AP, F1-max and AUPIMO existed
    assert "| classes overlap fully | 3.93 | 20.50 |" in text
    assert "| separated | 3.93 | 8.13 | 4.50 | 4.25 | 1.00 | 2.84 GiB" in text
    assert "train_eager_fp32" not in text  # a small run's network timings are not listed


def test_the_estimate_prefers_the_measured_training_loop(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "GPU_1.json").write_text(json.dumps({
        "profile": "full", "device": "Test GPU", "torch": "9.9", "train_img_per_s_eager": 100.0,
        "train_graphed_x4": {"n_models": 4, "aggregate_img_per_s": 400.0},
        "train_loop_x4": {"n_models": 4, "aggregate_img_per_s": 300.0}}))
    (res / "cpu_2.json").write_text(json.dumps({
        "profile": "small", "device": "Test CPU", "torch": "9.9",
        "train_loop_x2": {"n_models": 2, "aggregate_img_per_s": 9000.0}}))
    mod = _summarize()
    mod.main(["--results", str(res), "--out", str(tmp_path / "gen")])
    text = (tmp_path / "gen" / "compute_tables.md").read_text()
    assert "the training loop `make reproduce` runs (`train_loop_x4` in run 1: 300 img/s)" in text
    images = sum(mod.TRAIN_IMAGES.values()) * mod.EPOCHS * (1 + mod.ABLATION_EXTRA_TRAININGS)
    assert f"**{images / 300.0 / 3600:.1f} h**" in text


def test_step_profile_is_shown_by_kind_of_kernel(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "GPU_20990101-000000_profile_step.json").write_text(json.dumps({
        "device": {"name": "Test GPU"}, "image_size": 256, "batch": 16, "compiled": True,
        "step_ms_eager_launch": 20.5, "teacher_forward_ms": 3.25,
        "by_kind": {"convolution / GEMM": {"ms_per_step": 9.0, "share": 0.45},
                    "batch norm": {"ms_per_step": 4.0, "share": 0.2}}}))
    assert _summarize().main(["--results", str(res), "--out", str(tmp_path / "gen")]) == 0
    text = (tmp_path / "gen" / "compute_tables.md").read_text()
    assert "## Where the optimised step's time goes (run 20990101-000000_profile_step" in text
    assert "| convolution / GEMM | 9.00 | 45% |" in text and "costs 3.25 ms" in text


def test_step_profile_sorts_kernels_by_kind():
    spec = importlib.util.spec_from_file_location("profile_step",
                                                  ROOT / "benchmarks/profile_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.kind_of("triton_poi_fused_convolution_relu_5") == "compiled fusions (Triton)"
    assert mod.kind_of("cudnn::bn_fw_tr_1C11_kernel_NCHW<float>") == "batch norm"
    assert mod.kind_of("sm90_xmma_fprop_implicit_gemm_bf16bf16") == "convolution / GEMM"
    assert mod.kind_of("void at::native::batch_norm_collect_statistics_channels_last_kernel"
                       ) == "batch norm"
    assert mod.kind_of("void multi_tensor_apply_kernel<FusedAdamMathFunctor<float>>") == "Adam"
    assert mod.kind_of("void at::native::multi_tensor_apply_kernel<TensorListMetadata<1>, "
                       "BinaryOpScalarFunctor<float, 1, 1, 0>, std::plus<float>, float>"
                       ) == "Adam"  # the step counters' +1
    assert mod.kind_of("void cudnn::ops::nchwToNhwcKernel<__nv_bfloat16>") == "copies and casts"
    assert mod.kind_of("void at::native::vectorized_elementwise_kernel<4, CUDAFunctor_add>"
                       ) == "other element-wise"


def test_goals_are_set_against_the_best_measurements(tmp_path):
    """Each goal row says what was measured, where, and whether it is met; the compute
    floor comes from the GEMM rate the file measured and the device's data sheet."""
    res = tmp_path / "results"
    res.mkdir()
    gpu_pm = {"device": "cuda", "n_pixels": 250_019_840, "pixel_auroc_s": 0.04, "aupro_s": 6.5}
    (res / "NVIDIA-H100-80GB-HBM3_1.json").write_text(json.dumps({
        "profile": "full", "device": "NVIDIA H100 80GB HBM3", "torch": "9.9",
        "train_img_per_s_eager": 400.0, "pixel_metrics": gpu_pm,
        "components": {"matmul_tflops": 800.0, "matmul_dtype": "bfloat16"},
        "train_graphed_compiled_x4": {"n_models": 4, "aggregate_img_per_s": 1600.0},
        "inference_compiled_b256": {"batch": 256, "graphed_img_per_s": 4000.0}}))
    cpu_pm = {"device": "cpu", "n_pixels": 250_019_840, "threads": 2, "pixel_auroc_s": 30.0,
              "aupro_s": 9.0, "peak_rss_gib": 4.5}
    (res / "cpu_2.json").write_text(json.dumps({
        "profile": "small", "device": "Test CPU", "torch": "9.9", "pixel_metrics": cpu_pm,
        "train_loop_x2": {"n_models": 2, "aggregate_img_per_s": 9000.0}}))  # small: ignored
    mod = _summarize()
    mod.main(["--results", str(res), "--out", str(tmp_path / "gen")])
    text = (tmp_path / "gen" / "compute_tables.md").read_text()
    rows = {ln.split(" | ")[0].lstrip("| "): ln for ln in text.splitlines()
            if ln.startswith("| ") and (" | ≥ " in ln or " | < " in ln)}
    step = rows["training, the step alone (T in the step), aggregate"]
    assert "1,600 img/s; 4.0× the eager fp32 step" in step and step.endswith("| yes |")
    assert "not measured on a GPU yet" in rows[
        "training, the loop `make reproduce` runs (T's features once)"]
    assert "4,000 img/s" in rows["inference (maps + scores)"]
    assert rows["inference (maps + scores)"].endswith("| **no** |")
    assert rows["exact pixel AUROC, 250 M px, GPU"].endswith("| yes |")
    assert rows["exact AUPRO, 250 M px, GPU"].endswith("| **no** |")  # 6.5 s ≥ 5 s
    cpu = rows["exact pixel AUROC, 250 M px, 2-core CPU, ≤ 4 GiB"]
    assert "30.00 s, 4.5 GiB peak" in cpu and cpu.endswith("| **no** |")  # over 4 GiB
    hours = sum(mod.TRAIN_IMAGES.values()) * mod.EPOCHS * 4 / 1600 / 3600
    assert f"{hours:.1f} h at 1,600 img/s" in rows["Tables 2–4, GPU time (estimate below)"]
    floor_gemm, floor_sheet = 800e3 / (4 * 29.8), 989.4e3 / (4 * 29.8)
    assert (f"{1600 / floor_gemm:.0%} of the {floor_gemm:,.0f} img/s that the bf16 GEMM rate "
            "measured on this device (800 TFLOP/s) allows") in text
    assert f"{1600 / floor_sheet:.0%} of the {floor_sheet:,.0f} img/s" in text


def test_bench_headline_sets_the_step_against_the_measured_gemm_and_the_data_sheet():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks/bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = {"image_size": 256, "device": "NVIDIA H100 80GB HBM3",
           "components": {"matmul_tflops": 700.0, "matmul_dtype": "bfloat16"},
           "train_eager_fp32": {"img_per_s": 300.0},
           "train_graphed_compiled_x4": {"aggregate_img_per_s": 1200.0}}
    mod.summarize(res)
    assert res["train_img_per_s"] == 1200.0 and res["speedup_vs_eager"] == 4.0
    assert res["train_img_per_s_from"] == "train_graphed_compiled_x4"
    assert res["compute_floor_img_per_s"] == round(700e3 / (4 * 29.8))
    assert res["fraction_of_datasheet_floor"] == round(1200 / (989.4e3 / (4 * 29.8)), 3)
    cpu = {"image_size": 64, "device": "Some CPU (2 cores)",
           "components": {"matmul_tflops": 0.1, "matmul_dtype": "float32"},
           "train_eager_bf16_cl": {"img_per_s": 4.0}}
    mod.summarize(cpu)
    assert "compute_floor_img_per_s" not in cpu  # an fp32 CPU GEMM is no tensor-core floor


def test_baseline_benchmarks_are_listed_apart_from_the_paper_networks(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "CPU_baselines_1.json").write_text(json.dumps({
        "kind": "baselines", "device": "Test CPU (2 cores)", "backbone": "wide_resnet50_2",
        "image_size": 256, "n_train": 64, "n_test": 32, "commit": "0123456789abc",
        "padim_ours": {"fit_img_per_s": 5.0, "infer_img_per_s": 7.5, "peak_rss_gib": 6.1},
        "padim_anomalib": {"fit_img_per_s": 2.0, "infer_img_per_s": 3.0, "peak_rss_gib": 9.0,
                           "anomalib": "2.7.0"},
        "patchcore_ours": {"error": "boom"},
        "patchcore_anomalib": {"skipped": "anomalib not installed"}}))
    mod = _summarize()
    assert mod.load(res) == []  # not a benchmark of the paper's network
    mod.main(["--results", str(res), "--out", str(tmp_path / "gen")])
    text = (tmp_path / "gen" / "baselines_bench.md").read_text()
    assert "| Test CPU (2 cores) | PaDiM | this package | 5.0 | 7.5 | 6.10 |" in text
    assert "| PaDiM | anomalib 2.7.0 | 2.0 | 3.0 | 9.00 |" in text
    assert "| PatchCore | this package | boom |" in text and "anomalib not installed" in text


def test_simplenet_seed_study_shows_each_seed_and_the_spread(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    curve = [{"epoch": 2, "image_auroc": 0.5, "pixel_auroc": 0.4, "aupro": 0.2}]
    runs = [{"set": "texture", "seed": s, "noise_std": 0.5, "epochs": 2, "curve": curve,
             "last": {"image_auroc": v, "pixel_auroc": 0.6, "aupro": 0.3}}
            for s, v in ((0, 0.9), (1, 0.7))]
    (res / "CPU_simplenet_seeds_1.json").write_text(json.dumps({
        "kind": "simplenet_seeds", "device": "Test CPU (2 cores)", "backbone": "efficientnet_lite0",
        "image_size": 256, "n_train": 32, "batch_size": 8, "commit": "abc", "runs": runs}))
    mod = _summarize()
    assert mod.load(res) == []
    mod.main(["--results", str(res), "--out", str(tmp_path / "gen")])
    text = (tmp_path / "gen" / "simplenet_seeds.md").read_text()
    assert "| texture | 0.5 | 1 | 0.700 | 0.600 | 0.300 | 0.50 / 0.40 |" in text
    assert "**0.800 ± 0.141**" in text  # sample standard deviation of 0.9 and 0.7


def test_skip_ts_form_study_shows_the_losses_beside_the_metrics(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    run = {"set": "medical", "variant": "no L_mac", "overrides": ["skip_ts.mac=none"],
           "train_s": 12.4, "first": {"loss": 3.0, "sim": 2.5, "mac": 10.0},
           "last": {"loss": 1.5, "sim": 1.25, "mac": 5.0},
           "image_auroc": 0.9, "pixel_auroc": 0.8, "aupro": 0.7}
    (res / "CPU_skip_ts_forms_1.json").write_text(json.dumps({
        "kind": "skip_ts_forms", "device": "Test CPU (2 cores)", "backbone": "efficientnet_lite0",
        "image_size": 256, "n_train": 32, "batch_size": 8, "epochs": 8, "commit": "abc",
        "runs": [run]}))
    mod = _summarize()
    assert mod.load(res) == []  # not a WRN-50-2 speed benchmark
    mod.main(["--results", str(res), "--out", str(tmp_path / "gen")])
    text = (tmp_path / "gen" / "skip_ts_forms.md").read_text()
    # β·L_mac is read as L_DRKD − L_sim
    assert ("| medical | no L_mac | 2.500 → 1.250 | 0.500 → 0.250 | 0.900 | 0.800 | 0.700 "
            "| 12 |") in text


def test_mhkd_cost_study_gives_the_teachers_time_and_memory(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    teacher = {"distilled_on": "the 16 photographs", "steps": 40, "batch_size": 4,
               "image_size": 256, "width": 0.25, "wall_s": 120.4, "peak_memory_mib": 2048.0,
               "peak_memory_kind": "process max RSS", "device": "cpu",
               "losses": [{"step": 1, "loss": 0.9}, {"step": 40, "loss": 0.5}]}
    run = {"set": "texture", "teacher_reused": False, "run_s": 300.0,
           "first": {"L_L": 1.0, "L_G": 1.0, "L_SG": 0.01},
           "last": {"L_L": 0.5, "L_G": 0.9, "L_SG": 0.002},
           "image_auroc": 0.6, "pixel_auroc": 0.9, "aupro": 0.7}
    (res / "CPU_mhkd_costs_1.json").write_text(json.dumps({
        "kind": "mhkd_costs", "device": "Test CPU (2 cores)", "backbone": "efficientnet_lite0",
        "image_size": 256, "n_train": 32, "batch_size": 8, "epochs": 8, "commit": "abc",
        "overrides": ["mhkd.width=0.25"], "teacher": teacher, "runs": [run]}))
    mod = _summarize()
    assert mod.load(res) == []
    mod.main(["--results", str(res), "--out", str(tmp_path / "gen")])
    text = (tmp_path / "gen" / "mhkd_costs.md").read_text()
    assert "**120 s**" in text and "**2.00 GiB** (process max RSS)" in text
    assert "| texture | 1.000 → 0.500 | 1.000 → 0.900 | 0.0100 → 0.0020 | 0.600 | 0.900 " \
           "| 0.700 | 300 (teacher made) |" in text


def _method_rows(text):
    return {ln.split(" | ")[1]: ln for ln in text.splitlines()
            if ln.startswith("| ") and " | " in ln and not ln.startswith("| device")}


def test_every_methods_throughput_and_its_paper_profile_hours(tmp_path):
    """benchmarks/bench_methods.py's file: one row per method, the fit of a fitted one, an
    error said where a method failed, the paper profile's training hours at each rate; a
    small (CPU) file is not listed."""
    res = tmp_path / "results"
    res.mkdir()
    trained = {"kind": "trained", "teacher": "resnet18", "batch": 32, "epochs": 100,
               "train_img_per_s": 2000.0, "train_img_per_s_teacher_in_step": 1500.0,
               "train_peak_gib": 3.5, "infer_batch": 32, "infer_img_per_s": 4000.0}
    fitted = {"kind": "fitted", "teacher": "wide_resnet50_2", "batch": 32, "fit_images": 300,
              "fit_s": 1.5, "fit_img_per_s": 200.0, "fit_peak_gib": 9.0, "infer_batch": 32,
              "infer_img_per_s": 800.0}
    (res / "GPU_methods_20990101-000000.json").write_text(json.dumps({
        "kind": "methods", "profile": "full", "device": "Test GPU", "image_size": 256,
        "commit": "0123456789abc", "methods": {"stfpm": trained, "padim": fitted,
                                               "mkd": {"error": "RuntimeError: boom"}}}))
    (res / "CPU_methods_20990101-000000.json").write_text(json.dumps({
        "kind": "methods", "profile": "small", "device": "Test CPU (2 cores)",
        "image_size": 64, "commit": "abc", "methods": {"stfpm": trained}}))
    mod = _summarize()
    assert mod.load(res) == []  # not a benchmark of Multi-AD's sections
    mod.main(["--results", str(res), "--out", str(tmp_path / "gen")])
    text = (tmp_path / "gen" / "methods_bench.md").read_text()
    rows = _method_rows(text)
    images = mod.paper_profile_images()
    assert images == sum(mod.TRAIN_IMAGES.values()) + 1772  # MVTec LOCO AD's train images
    assert rows["STFPM"].startswith("| Test GPU | STFPM | resnet18 | 32 | 2,000.0 | 1,500.0 | — "
                                    "| 4,000.0 (32) | 3.50 |")
    assert f"| {images * 100 / 2000 / 3600:,.2f} |" in rows["STFPM"]
    assert "| 1.5 s for 300 (200.0 img/s) | 800.0 (32) | 9.00 |" in rows["PaDiM"]
    assert f"| {images / 200 / 3600:,.2f} |" in rows["PaDiM"]
    assert "RuntimeError: boom" in rows["MKD"]
    assert "Test CPU" not in text and "commit 0123456789" in text.lower()


def test_multiad_on_other_teachers_is_listed_apart(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "GPU_20990101-000000_efficientnet_lite0.json").write_text(json.dumps({
        "profile": "full", "device": "Test GPU", "torch": "9.9", "backbone": "efficientnet_lite0",
        "teacher_weights": "imagenet", "train_img_per_s_eager": 900.0,
        "train_eager_bf16_cl": {"img_per_s": 1000.0}, "train_img_per_s": 2500.0,
        "infer_img_per_s": 9000.0,
        "train_graphed_x4": {"n_models": 4, "aggregate_img_per_s": 2500.0}}))
    mod = _summarize()
    assert mod.load(res) == []  # the goals are about the paper's WRN-50-2
    mod.main(["--results", str(res), "--out", str(tmp_path / "gen")])
    text = (tmp_path / "gen" / "compute_tables.md").read_text()
    assert "## Multi-AD with other teachers" in text
    assert ("| 20990101-000000_efficientnet_lite0 | Test GPU | `efficientnet_lite0` (imagenet "
            "weights) | 900.0 | 1,000.0 | 2,500.0 | — | 9,000.0 |") in text


def test_bench_methods_runs_every_kind_of_method(tmp_path):
    """The per-method benchmark on the CPU at a tiny size: a trained and a fitted method."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/bench_methods.py"), "--out", str(tmp_path),
         "--device", "cpu", "--size", "32", "--fit-images", "4", "--methods", "stfpm,padim"],
        capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = tmp_path.glob("*_methods_*.json")
    r = json.loads(path.read_text())
    assert r["kind"] == "methods" and r["profile"] == "small" and r["image_size"] == 32
    stfpm, padim = r["methods"]["stfpm"], r["methods"]["padim"]
    assert "error" not in stfpm and "error" not in padim, (stfpm, padim)
    assert stfpm["batch"] == 32 and stfpm["train_img_per_s"] > 0 and stfpm["infer_img_per_s"] > 0
    assert padim["fit_images"] == 4 and padim["fit_img_per_s"] > 0


def test_a_gpu_record_counts_every_pytest_run_of_the_log(tmp_path):
    """`gpu_session.sh all` runs pytest twice into pytest_cuda.log (the compiled test
    apart): the record gives both summary lines."""
    import io
    import tarfile

    spec = importlib.util.spec_from_file_location("record_gpu_run",
                                                  ROOT / "benchmarks/record_gpu_run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    files = tmp_path / "files"
    files.mkdir()
    metrics = json.dumps({"metrics": {"image_auroc": 0.5, "pixel_auroc": 0.6},
                          "provenance": {"device": {"name": "Test GPU"}, "commit": "abc1234",
                                         "utc": "2099-01-01T00:00:00Z"}}).encode()
    with tarfile.open(files / "results.tgz", "w:gz") as tar:
        info = tarfile.TarInfo("results/gpu-smoke/runs/tex/seed0/metrics.json")
        info.size = len(metrics)
        tar.addfile(info, io.BytesIO(metrics))
    (files / "reproduce.log").write_text("profile gpu-smoke: 1 notebooks, 1 runs → x\n"
                                         "[notebook 1/1 · 0/1 runs done · 0.0 min] tex\n"
                                         "profile gpu-smoke: finished in 1.0 min\n"
                                         "reproduce exit status 0 after 60 s\n")
    (files / "pytest_cuda.log").write_text(
        "....\nFAILED tests/x.py::t - assert 3 failed\n14 passed, 1 deselected in 70.10s\n"
        "===== the compiled test\n.\n1 passed, 6 deselected in 95.00s (0:01:35)\n")
    rec = mod.record(files)
    assert rec["cuda_tests"] == ("14 passed, 1 deselected in 70.10s; "
                                 "1 passed, 6 deselected in 95.00s (0:01:35)")
    assert rec["notebooks"] == {"tex": "ok"} and rec["commit"] == "abc1234"


def test_the_adversarial_study_is_rendered_with_its_choice_and_epochs_figure(tmp_path):
    res = tmp_path / "results"
    res.mkdir()

    def run(s, variant, epochs, img):
        return {"set": s, "variant": variant, "epochs": epochs, "val_image_auroc": img,
                "val_pixel_auroc": 0.9, "image_auroc": img - 0.1, "pixel_auroc": 0.8,
                "aupro": 0.7, "curve": [{"epoch": epochs, "L_G": 0.5, "lambda": 0.003}]}

    (res / "CPU_multiad_adversarial_1.json").write_text(json.dumps({
        "kind": "multiad_adversarial", "n_train": 32, "holdout": 0.15, "image_size": 256,
        "epochs": 8, "long": [16], "batch_size": 8, "backbone": "efficientnet_lite0",
        "device": "Test CPU", "commit": "abcdef123", "chosen": "balanced r = 0.1",
        "runs": [run("texture", "D off", 8, 0.95), run("texture", "balanced r = 0.1", 8, 0.97),
                 run("texture", "D off", 16, 0.9),
                 run("texture", "balanced r = 0.1", 16, 0.96)]}))
    mod = _summarize()
    assert mod.main(["--results", str(res), "--out", str(tmp_path / "gen")]) == 0
    text = (tmp_path / "gen" / "multiad_adversarial.md").read_text()
    assert "balanced r = 0.1 (chosen)" in text and "0.970 / 0.900" in text
    assert "| textures | D off | 0.950 / 0.900 | 0.850 |" in text
    assert "(multiad_epochs.png)" in text
    assert (tmp_path / "gen" / "multiad_epochs.png").stat().st_size > 0
    assert "adversarial" not in (tmp_path / "gen" / "compute_tables.md").read_text()
