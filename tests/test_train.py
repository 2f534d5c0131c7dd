"""Algorithm 1: losses go down, switches work, resume equals an uninterrupted run."""

from __future__ import annotations

import copy
import gc
import math

import pytest
import torch

from multiad.config import RunConfig, RunConfigMismatch
from multiad.engine.optim import execution
from multiad.methods.multiad.trainer import MultiADTrainer
from multiad.torch_files import load_torch
from multiad.train import (
    TrainingFailed,
    epoch_order,
    load_trained,
    train,
    train_many,
)


def _student_state(run_dir):
    return load_torch(run_dir / "model.pt")


def test_trainer_step_updates_student_and_discriminator_not_teacher(tiny_config):
    trainer = MultiADTrainer(tiny_config, torch.device("cpu"))
    x = torch.randn(4, 3, 32, 32)
    t0 = [p.clone() for p in trainer.model.teacher.parameters()]
    s0 = [p.clone() for p in trainer.model.student.parameters()]
    d0 = [p.clone() for p in trainer.discriminators.parameters()]
    out = trainer.step(x)
    assert set(out) == {"L_G", "L_adv", "L_D", "L_S", "lambda"}
    assert math.isclose(float(out["L_S"]), float(out["L_G"] + out["lambda"] * out["L_adv"]),
                        rel_tol=1e-5)
    def same(before, module):
        return [torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True)]

    assert all(same(t0, trainer.model.teacher))
    assert not all(same(s0, trainer.model.student))
    assert not all(same(d0, trainer.discriminators))


def test_the_fixed_rule_keeps_the_first_lambda(tiny_config):
    cfg = tiny_config.with_overrides(["multiad.lambda_rule=fixed", "multiad.lambda_adv=0.1"])
    out = MultiADTrainer(cfg, torch.device("cpu")).step(torch.randn(4, 3, 32, 32))
    assert float(out["lambda"]) == pytest.approx(0.1)
    assert math.isclose(float(out["L_S"]), float(out["L_G"] + 0.1 * out["L_adv"]), rel_tol=1e-5)


@pytest.mark.parametrize("stages", [[4], [3, 4]])
def test_balanced_lambda_gives_the_adversarial_gradient_a_fixed_share_at_ds_input(
        tiny_config, stages):
    cfg = tiny_config.with_overrides(["multiad.adv_ratio=0.25", f"multiad.d_stages={stages}"])
    trainer = MultiADTrainer(cfg, torch.device("cpu"))
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    t_feats, s_feats = trainer.model.teacher(x), trainer.model.student(x)
    from multiad.methods.multiad.loss import (
        adversarial_loss,
        distillation_loss,
        l2_normalize,
        student_loss,
    )

    l_g = distillation_loss(t_feats, s_feats)
    l_adv = sum(adversarial_loss(trainer.discriminators[str(s)](l2_normalize(s_feats[s - 1])))
                for s in stages)
    seen = [s_feats[s - 1] for s in stages]
    g_g = torch.autograd.grad(l_g, seen, retain_graph=True)
    g_a = torch.autograd.grad(l_adv, seen, retain_graph=True)
    norm = lambda gs: torch.sqrt(sum((g ** 2).sum() for g in gs))  # noqa: E731
    expected_lam = 0.25 * norm(g_g) / norm(g_a)  # adversarial: a quarter of L_G's, at D's input
    params = [p for p in trainer.model.student.parameters()]
    expected = torch.autograd.grad(l_g + expected_lam * l_adv, params, retain_graph=True,
                                   allow_unused=True)
    lam = trainer._balanced_lambda(l_g, l_adv, s_feats)
    student_loss(l_g, l_adv, lam).backward()
    assert float(lam) == pytest.approx(float(expected_lam), rel=1e-5)
    for p, e in zip(params, expected, strict=True):  # L_S went back through S once
        if e is None:
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, e)


def test_distillation_loss_decreases_on_a_fixed_batch(tiny_config):
    cfg = tiny_config.with_overrides(["multiad.discriminator=false"])
    trainer = MultiADTrainer(cfg, torch.device("cpu"))
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    losses = [float(trainer.step(x)["L_G"]) for _ in range(8)]
    assert losses[-1] < 0.9 * losses[0] and min(losses[4:]) < min(losses[:4])


def test_epoch_order_depends_only_on_seed_and_epoch():
    assert torch.equal(epoch_order(10, 3, 5), epoch_order(10, 3, 5))
    assert not torch.equal(epoch_order(10, 3, 5), epoch_order(10, 3, 6))
    assert sorted(epoch_order(10, 3, 5).tolist()) == list(range(10))


def test_train_writes_run_folder_and_calibrates_mff(tiny_config, tmp_path):
    run = tmp_path / "run"
    train(tiny_config, run, progress=False)
    for name in ("config.yaml", "model.pt", "losses.csv", "train.json"):
        assert (run / name).exists(), name
    assert not (run / "checkpoint.pt").exists()  # train.keep_checkpoint=false: ~1 GB saved
    model, cfg, meta = load_trained(run)
    assert cfg == tiny_config.validate() and bool(model.mff.calibrated)
    assert meta["teacher"]["kind"] == "random" and "warning" in meta["teacher"]
    assert len(meta["losses"]) == 2 and meta["map_stats"][0]["var"] > 0
    assert meta["provenance"]["torch"] == torch.__version__
    assert not any(name.endswith(".tmp") for name in map(str, run.iterdir()))


class Interrupted(Exception):
    pass


def test_resume_after_interrupt_between_epochs_equals_uninterrupted(tiny_config, tmp_path):
    cfg = tiny_config.with_overrides(["train.epochs=3"])
    train(cfg, tmp_path / "a", progress=False)

    def stop(epoch):
        if epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(cfg, tmp_path / "b", progress=False, on_epoch_end=stop)
    assert not (tmp_path / "b" / "model.pt").exists()
    train(cfg, tmp_path / "b", progress=False)
    a, b = _student_state(tmp_path / "a"), _student_state(tmp_path / "b")
    for k in a["student"]:
        assert torch.equal(a["student"][k], b["student"][k]), k
    assert a["meta"]["losses"] == [] or [r["L_S"] for r in a["meta"]["losses"]] == [
        r["L_S"] for r in b["meta"]["losses"]]
    assert a["meta"]["map_stats"] == b["meta"]["map_stats"]


def test_resume_after_crash_mid_epoch_equals_uninterrupted(tiny_config, tmp_path, monkeypatch):
    train(tiny_config, tmp_path / "a", progress=False)
    real_step = MultiADTrainer.step
    calls = {"n": 0}

    def crashing_step(self, x, t_feats=None):
        calls["n"] += 1
        if calls["n"] == 4:  # epoch 2 of 3 batches each → mid-epoch
            raise Interrupted
        return real_step(self, x, t_feats)

    monkeypatch.setattr(MultiADTrainer, "step", crashing_step)
    with pytest.raises(Interrupted):
        train(tiny_config, tmp_path / "b", progress=False)
    monkeypatch.setattr(MultiADTrainer, "step", real_step)
    train(tiny_config, tmp_path / "b", progress=False)
    a, b = _student_state(tmp_path / "a"), _student_state(tmp_path / "b")
    for k in a["student"]:
        assert torch.equal(a["student"][k], b["student"][k]), k


def test_rerun_of_finished_run_is_a_no_op(tiny_config, tmp_path):
    path = train(tiny_config, tmp_path / "r", progress=False)
    mtime = path.stat().st_mtime_ns
    train(tiny_config, tmp_path / "r", progress=False)
    assert path.stat().st_mtime_ns == mtime


def test_run_folder_with_other_config_is_refused(tiny_config, tmp_path):
    cfg = tiny_config.with_overrides(["train.epochs=1"])
    train(cfg, tmp_path / "r", progress=False)
    with pytest.raises(RunConfigMismatch, match="different configuration"):
        train(cfg.with_overrides(["multiad.se=false"]), tmp_path / "r", progress=False)


@pytest.mark.parametrize("overrides", [
    ["multiad.se=false", "multiad.discriminator=false", "multiad.mff=false"],  # Table 4 row 8
    ["multiad.fusion=false", "multiad.dilation_rates=[1,1,1,1]", "multiad.map_fusion=product"],
    ["multiad.mff_relu=false", "multiad.d_stages=[3,4]"],
])
def test_ablation_switches_train(tiny_config, tmp_path, overrides):
    cfg = tiny_config.with_overrides(["train.epochs=1", *overrides])
    train(cfg, tmp_path / "r", progress=False)
    model, back, _ = load_trained(tmp_path / "r")
    assert back == cfg.validate()
    assert (model.mff is None) == (not cfg.multiad.mff)


def test_resuming_restores_adam_state_but_not_how_the_saved_run_executed_it(tiny_config):
    """A checkpoint carries its run's Adam settings (here an older run's multi-tensor Adam);
    resumed, Adam runs the fused way and continues exactly as from a checkpoint of its
    own kind."""
    cpu = torch.device("cpu")
    trainer = MultiADTrainer(tiny_config, cpu)
    x = torch.randn(4, 3, 32, 32)
    trainer.step(x)
    state = copy.deepcopy(trainer.state(1, []))  # as read from disk: no shared tensors
    foreign = copy.deepcopy(state)
    foreign["opt_s"] = {**foreign["opt_s"], "param_groups": [  # an older multi-tensor run
        {**g, "foreach": True, "fused": None} for g in foreign["opt_s"]["param_groups"]]}
    for s in foreign["opt_s"]["state"].values():
        s["step"] = torch.tensor(float(s["step"]))  # its step counters: plain CPU scalars
    for a, b in ((MultiADTrainer(tiny_config, cpu), state),
                 (MultiADTrainer(tiny_config, cpu), foreign)):
        a.load_state(b)
        for opt in (a.opt_s, a.opt_d):
            for g in opt.param_groups:
                assert {k: g[k] for k in ("fused", "foreach")} == execution(cpu)
                assert g["capturable"] is False
            assert all(s["step"].device == cpu for s in opt.state.values())
        torch.manual_seed(1)
        a.step(x)
        if b is state:
            own = [p.clone() for p in a.model.student.parameters()]
    assert all(torch.equal(p, q) for p, q in zip(own, a.model.student.parameters(),
                                                  strict=True))


def test_compile_mode_is_validated_and_may_change_on_resume(tiny_config, tmp_path):
    with pytest.raises(ValueError, match="compile_mode 'reduce-overhead'.*cudagraph"):
        tiny_config.with_overrides(["train.compile_mode=reduce-overhead"]).validate()
    cfg = tiny_config.with_overrides(["train.epochs=1"])
    train(cfg, tmp_path / "r", progress=False, resume=True)
    again = cfg.with_overrides(["train.compile_mode=max-autotune-no-cudagraphs"])
    assert train(again, tmp_path / "r", progress=False).exists()  # no mismatch: a no-op


def test_cached_teacher_features_train_as_teacher_in_every_step(tiny_config, tmp_path):
    """T's features computed once give the losses and weights of T run in every step."""
    train(tiny_config, tmp_path / "cached", progress=False)
    train(tiny_config.with_overrides(["train.cache_teacher=false"]), tmp_path / "per-step",
          progress=False)
    a, b = _student_state(tmp_path / "cached"), _student_state(tmp_path / "per-step")
    assert a["meta"]["teacher_features_cached"] and not b["meta"]["teacher_features_cached"]
    for ra, rb in zip(a["meta"]["losses"], b["meta"]["losses"], strict=True):
        for key in ("L_G", "L_D", "L_S"):
            assert math.isclose(ra[key], rb[key], rel_tol=1e-5), (key, ra, rb)
    for key, v in a["student"].items():
        torch.testing.assert_close(v, b["student"][key], rtol=1e-4, atol=1e-5)


def test_teacher_features_equal_the_teachers_output_and_respect_the_budget(tiny_config):
    from multiad.engine.teacher_cache import teacher_features

    trainer = MultiADTrainer(tiny_config, torch.device("cpu"))
    images = torch.randint(0, 255, (6, 3, 32, 32), dtype=torch.uint8)
    feats = teacher_features(trainer, images, progress=False)
    with torch.no_grad():
        direct = trainer.model.teacher(trainer.prepare(images[[4, 1]]))
    assert [f.shape[0] for f in feats] == [6] * 4
    for f, d in zip(feats, direct, strict=True):
        torch.testing.assert_close(f[[4, 1]], d, rtol=1e-5, atol=1e-6)
    need = 6 * sum(f[0].numel() * f.element_size() for f in feats)
    assert teacher_features(trainer, images, progress=False, budget=need - 1) is None
    assert teacher_features(trainer, images, progress=False, budget=need) is not None


def test_training_falls_back_to_the_teacher_per_step_when_features_do_not_fit(
        tiny_config, tmp_path, monkeypatch):
    import multiad.engine.teacher_cache as teacher_cache

    monkeypatch.setattr(teacher_cache, "_memory_budget", lambda device: 0)
    train(tiny_config.with_overrides(["train.epochs=1"]), tmp_path / "r", progress=False)
    meta = _student_state(tmp_path / "r")["meta"]
    assert meta["teacher_features_cached"] is False and meta["losses"][0]["L_G"] > 0


def test_config_is_validated_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="data.kind"):
        train(RunConfig().with_overrides(["data.kind=nope"]), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_runs_trained_together_equal_runs_trained_alone(tiny_config, tmp_path, monkeypatch):
    """Interleaved steps, each run with its own RNG (D's dropout), data order and length."""
    import multiad.engine.shared_data as train_module
    cfgs = [tiny_config,
            tiny_config.with_overrides(["train.seed=1", "train.batch_size=6"]),
            tiny_config.with_overrides(["multiad.se=false", "train.epochs=3"])]
    for k, cfg in enumerate(cfgs):
        train(cfg, tmp_path / "alone" / str(k), progress=False)
    together = [tmp_path / "together" / str(k) for k in range(len(cfgs))]
    loads = []

    def counted(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    real_load = train_module.load_split
    monkeypatch.setattr(train_module, "load_split", counted)
    caches = []

    def counted_teacher(trainer, *args, **kwargs):
        caches.append(trainer.cfg.train.batch_size)
        return real_teacher(trainer, *args, **kwargs)

    real_teacher = train_module.teacher_features
    monkeypatch.setattr(train_module, "teacher_features", counted_teacher)
    # two at a time: the third run starts (and seeds its model) while another is mid-way
    paths = train_many(list(zip(cfgs, together, strict=True)), concurrent=2, progress=False)
    assert len(loads) == 1  # the three runs share one decoded training set
    assert sorted(caches) == [4, 6]  # and T's features per batch size (runs 0 and 2 share)
    assert paths == [d / "model.pt" for d in together]
    for k, d in enumerate(together):
        a, b = _student_state(tmp_path / "alone" / str(k)), _student_state(d)
        for key in a["student"]:
            assert torch.equal(a["student"][key], b["student"][key]), (k, key)
        assert [r["L_S"] for r in a["meta"]["losses"]] == [r["L_S"] for r in b["meta"]["losses"]]
        assert a["meta"]["map_stats"] == b["meta"]["map_stats"]
        assert a["meta"]["trained_together_with"] == []
        others = b["meta"]["trained_together_with"]
        assert others and set(others) <= {str(o) for o in together if o != d}
    assert str(together[1]) in _student_state(together[0])["meta"]["trained_together_with"]


def test_a_failing_run_does_not_stop_the_others(tiny_config, tmp_path, monkeypatch):
    real_step = MultiADTrainer.step
    calls = {"n": 0}

    def failing_for_seed_1(self, x, t_feats=None):
        if self.cfg.train.seed == 1:
            calls["n"] += 1
            if calls["n"] == 3:
                raise FloatingPointError("loss is NaN")
        return real_step(self, x, t_feats)

    monkeypatch.setattr(MultiADTrainer, "step", failing_for_seed_1)
    good, bad = tmp_path / "good", tmp_path / "bad"
    with pytest.raises(TrainingFailed, match="bad: FloatingPointError: loss is NaN") as info:
        train_many([(tiny_config.with_overrides(["train.seed=1"]), bad),
                    (tiny_config, good)], progress=False)
    assert set(info.value.failures) == {bad}
    gc.collect()  # the failure's traceback does not keep the failed run's model alive
    assert not [o for o in gc.get_objects() if type(o) is MultiADTrainer]
    assert (good / "model.pt").exists() and not (bad / "model.pt").exists()
    monkeypatch.setattr(MultiADTrainer, "step", real_step)
    assert train_many([(tiny_config, good)], progress=False) == [good / "model.pt"]


def test_a_group_shares_one_device_and_determinism_mode(tiny_config, tmp_path):
    with pytest.raises(ValueError, match="deterministic"):
        train_many([(tiny_config, tmp_path / "a"),
                    (tiny_config.with_overrides(["train.deterministic=false"]), tmp_path / "b")])
    with pytest.raises(ValueError, match="listed twice"):
        train_many([(tiny_config, tmp_path / "a"), (tiny_config, tmp_path / "a")])


def test_a_finished_run_is_freed_before_the_next_one_trains(tiny_config, tmp_path):
    live = []

    def count(_run_dir, _epoch):
        gc.collect()
        live.append(sum(type(o) is MultiADTrainer for o in gc.get_objects()))

    cfg = tiny_config.with_overrides(["train.epochs=1"])
    train_many([(cfg, tmp_path / "a"), (cfg.with_overrides(["train.seed=1"]), tmp_path / "b")],
               concurrent=1, progress=False, on_epoch_end=count)
    assert live == [1, 1]


def test_graph_input_buffers_take_the_steps_layout_and_dtype():
    """The CUDA graph's input buffers (images, T's features), built here on the CPU."""
    from multiad.engine.cuda_graph import static_buffer

    buf = static_buffer((2, 8, 4, 4), torch.bfloat16, torch.device("cpu"), torch.channels_last)
    assert buf.dtype == torch.bfloat16 and buf.shape == (2, 8, 4, 4)
    assert buf.is_contiguous(memory_format=torch.channels_last) and not buf.any()
    flat = static_buffer((2, 3), torch.float32, torch.device("cpu"), torch.contiguous_format)
    assert flat.is_contiguous() and flat.dtype == torch.float32


def test_a_folder_left_by_a_run_that_never_trained_takes_a_new_config(tiny_config, tmp_path):
    """A wrong data path fails before anything of the run is written (the folder holds its
    run-folder marker only): the corrected command is not refused (a trained folder still
    is)."""
    bad = tiny_config.with_overrides(["data.kind=mvtec", f"data.root={tmp_path / 'nowhere'}",
                                      "data.category=bottle"])
    with pytest.raises(Exception, match="nowhere"):
        train(bad, tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / "config.yaml").exists()
    assert {p.name for p in (tmp_path / "r").iterdir()} <= {".multiad-run", ".multiad-run.lock"}
    train(tiny_config.with_overrides(["train.epochs=1"]), tmp_path / "r", progress=False)
    with pytest.raises(RunConfigMismatch):
        train(tiny_config.with_overrides(["train.epochs=1", "multiad.se=false"]),
              tmp_path / "r", progress=False)


def test_adam_moments_take_their_parameters_layout_when_execution_is_set():
    """A checkpoint's moments are contiguous; a channels-last network's parameters are
    not (CUDA), and fused Adam refuses mixed layouts: set_execution aligns them."""
    from multiad.engine.optim import set_execution

    conv = torch.nn.Conv2d(4, 8, 3).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(conv.parameters(), foreach=True)
    conv(torch.randn(2, 4, 8, 8)).sum().backward()
    opt.step()
    saved = copy.deepcopy(opt.state_dict())
    for s in saved["state"].values():
        s["exp_avg"], s["exp_avg_sq"] = s["exp_avg"].contiguous(), s["exp_avg_sq"].contiguous()
    opt.load_state_dict(saved)
    set_execution(opt, torch.device("cpu"), capturable=False)
    state = opt.state[conv.weight]
    assert state["exp_avg"].stride() == conv.weight.stride()
    assert torch.equal(state["exp_avg"], saved["state"][0]["exp_avg"])
    opt.step()  # fused, on the aligned moments
