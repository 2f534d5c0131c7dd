"""Configuration round trips and errors; provenance. (Weights: test_backbones.py.)"""

import pytest

from multiad.config import RunConfig


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
    with pytest.raises(ValueError, match="model.backbone 'vit' unknown.*efficientnet_lite0"):
        RunConfig().with_overrides(["model.backbone=vit"]).validate()


def test_provenance_commit_from_git_or_the_environment(monkeypatch):
    from multiad.provenance import git_commit

    monkeypatch.delenv("MULTIAD_COMMIT", raising=False)
    here = git_commit()
    assert here["commit"] is None or len(here["commit"]) == 40
    monkeypatch.setenv("MULTIAD_COMMIT", "f1b1170")  # a copied tree: the copier knows best
    assert git_commit() == {"commit": "f1b1170", "dirty": None}
