"""Configuration round trips and errors; teacher-weight resolution and its errors."""

import pytest

from multiad.config import RunConfig
from multiad.weights import (
    SHA256_PREFIX,
    TeacherWeightsError,
    resolve_teacher_weights,
)


def test_config_roundtrip_yaml(tmp_path):
    cfg = RunConfig().with_overrides(["model.se=false", "train.betas=[0.5, 0.9]",
                                      "data.category=null"])
    p = tmp_path / "c.yaml"
    p.write_text(cfg.to_yaml())
    back = RunConfig.load(p)
    assert back == cfg and back.model.se is False and back.train.betas == (0.5, 0.9)


@pytest.mark.parametrize("bad,msg", [
    (["model.nope=1"], "no key 'nope'"),
    (["nope.x=1"], "section.key=value"),
    (["model.se"], "section.key=value"),
])
def test_config_override_errors(bad, msg):
    with pytest.raises(ValueError, match=msg):
        RunConfig().with_overrides(bad)


def test_config_file_unknown_key_names_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  se_block: true\n")
    with pytest.raises(ValueError, match=r"c\.yaml: model: unknown key\(s\) \['se_block'\]"):
        RunConfig.load(p)


def test_config_validate():
    with pytest.raises(ValueError, match="data.kind"):
        RunConfig().with_overrides(["data.kind=imagenet"]).validate()
    with pytest.raises(ValueError, match="map_fusion"):
        RunConfig().with_overrides(["model.map_fusion=max"]).validate()


def test_random_weights_are_explicit():
    w = resolve_teacher_weights("random")
    assert w.is_random and w.path is None and "RANDOM TEACHER" in w.describe()["warning"]


def test_offline_without_weights_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("MULTIAD_TEACHER_WEIGHTS", raising=False)
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with pytest.raises(TeacherWeightsError) as err:
        resolve_teacher_weights("imagenet", allow_download=False)
    text = str(err.value)
    assert "wide_resnet50_2-95faca4d.pth" in text and str(tmp_path / "torch") in text
    assert "--teacher-weights random" in text


def test_wrong_file_fails_hash_check(tmp_path):
    bad = tmp_path / "wide_resnet50_2-95faca4d.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TeacherWeightsError, match=SHA256_PREFIX):
        resolve_teacher_weights(bad)
    with pytest.raises(TeacherWeightsError, match="no such file"):
        resolve_teacher_weights(tmp_path / "missing.pth")


def test_auto_weights_fall_back_to_random_loudly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("MULTIAD_TEACHER_WEIGHTS", raising=False)
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with pytest.warns(UserWarning, match="RANDOM teacher"):
        w = resolve_teacher_weights("auto", allow_download=False)
    assert w.is_random


def test_provenance_commit_from_git_or_the_environment(monkeypatch):
    from multiad.provenance import git_commit

    monkeypatch.delenv("MULTIAD_COMMIT", raising=False)
    here = git_commit()
    assert here["commit"] is None or len(here["commit"]) == 40
    monkeypatch.setenv("MULTIAD_COMMIT", "f1b1170")  # a copied tree: the copier knows best
    assert git_commit() == {"commit": "f1b1170", "dirty": None}
