"""Configuration round trips and errors; provenance. (Weights: test_backbones.py.)"""

import pytest

from multiad.config import RunConfig


def test_config_roundtrip_yaml(tmp_path):
    cfg = RunConfig().with_overrides(["multiad.se=false", "train.betas=[0.5, 0.9]",
                                      "data.category=null"])
    p = tmp_path / "c.yaml"
    p.write_text(cfg.to_yaml())
    back = RunConfig.load(p)
    assert back == cfg and back.multiad.se is False and back.train.betas == (0.5, 0.9)


def test_an_exponent_without_a_dot_is_a_number():
    # YAML 1.1 reads 1e-3 as a string; an override means the number
    cfg = RunConfig().with_overrides(["train.lr=1e-3", "mhkd.lr=2E-4", "data.category=1e5x"])
    assert cfg.train.lr == 0.001 and cfg.mhkd.lr == 0.0002 and cfg.data.category == "1e5x"


@pytest.mark.parametrize("bad,msg", [
    (["multiad.nope=1"], "no key 'nope'"),
    (["nope.x=1"], "section.key=value"),
    (["multiad.se"], "section.key=value"),
])
def test_config_override_errors(bad, msg):
    with pytest.raises(ValueError, match=msg):
        RunConfig().with_overrides(bad)


def test_config_file_unknown_key_names_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("multiad:\n  se_block: true\n")
    with pytest.raises(ValueError, match=r"c\.yaml: multiad: unknown key\(s\) \['se_block'\]"):
        RunConfig.load(p)


def test_config_validate():
    with pytest.raises(ValueError, match="data.kind"):
        RunConfig().with_overrides(["data.kind=imagenet"]).validate()
    with pytest.raises(ValueError, match="map_fusion"):
        RunConfig().with_overrides(["multiad.map_fusion=max"]).validate()
    with pytest.raises(ValueError, match="teacher.backbone 'vit' unknown.*efficientnet_lite0"):
        RunConfig().with_overrides(["teacher.backbone=vit"]).validate()
    with pytest.raises(ValueError, match="method 'nope' unknown; use one of multiad"):
        RunConfig().with_overrides(["method=nope"]).validate()


def test_validate_fills_in_the_methods_reference_backbone_and_schedule():
    cfg = RunConfig()
    assert cfg.teacher.backbone is None and cfg.train.epochs is None
    full = cfg.validate()
    assert full.teacher.backbone == "wide_resnet50_2"
    assert (full.train.epochs, full.train.batch_size, full.train.lr, full.train.betas) == (
        250, 16, 1e-3, (0.9, 0.999))  # paper §4
    assert full.validate() == full
    mine = cfg.with_overrides(["train.epochs=3", "teacher.backbone=efficientnet_lite0"])
    assert (mine.validate().train.epochs, mine.validate().teacher.backbone) == (
        3, "efficientnet_lite0")


def test_configs_of_older_runs_still_load(tmp_path):
    """Older run folders kept the backbone and weights in ``model``."""
    old = tmp_path / "config.yaml"
    old.write_text("model:\n  teacher_weights: random\n  backbone: efficientnet_lite0\n"
                   "train:\n  epochs: 2\n")
    cfg = RunConfig.load(old)
    assert (cfg.teacher.weights, cfg.teacher.backbone, cfg.method) == (
        "random", "efficientnet_lite0", "multiad")
    assert RunConfig().with_overrides(["model.teacher_weights=random"]).teacher.weights == "random"


def test_provenance_commit_from_git_or_the_environment(monkeypatch):
    from multiad.provenance import git_commit

    monkeypatch.delenv("MULTIAD_COMMIT", raising=False)
    here = git_commit()
    assert here["commit"] is None or len(here["commit"]) == 40
    monkeypatch.setenv("MULTIAD_COMMIT", "f1b1170")  # a copied tree: the copier knows best
    assert git_commit() == {"commit": "f1b1170", "dirty": None}


def test_the_old_model_section_still_reads_and_what_the_user_writes_is_told(recwarn):
    """Multi-AD's section was ``model`` before version 0.3: records of the package (a run's
    metrics.json) read silently, a command line or file the user writes gets a note."""
    old = RunConfig.from_dict({"method": "multiad", "model": {"se": False}})
    assert old.multiad.se is False and not recwarn.list
    with pytest.warns(FutureWarning, match="'model' is now called 'multiad'"):
        assert RunConfig().with_overrides(["model.se=false"]).multiad.se is False
    with pytest.raises(ValueError, match="one section"):
        RunConfig.from_dict({"model": {}, "multiad": {}})
