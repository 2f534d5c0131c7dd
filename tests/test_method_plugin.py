"""A researcher's own method from their own installed package
(``examples/gaussian_method``, entry-point group ``multiad.methods``) joins the comparison:
the command line, a profile's runs and the tables, under the same conditions — and a
broken or clashing plugin is named and left out, never taking the package down."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "gaussian_method"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed (pip, no build isolation: nothing downloaded) into a folder of
    its own, which the subprocesses below put on their path."""
    tmp = tmp_path_factory.mktemp("plugin")
    source = tmp / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True)
    return target


def _run(args: list[str], plugin: Path | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(p) for p in (plugin, REPO) if p is not None])}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


SMALL = ["--set", "data.image_size=64", "--set", "teacher.backbone=efficientnet_lite0",
         "--set", "teacher.weights=imagenet", "--set", "train.device=cpu"]


def test_the_cli_runs_an_installed_method(plugin_path: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = _run([sys.executable, "-m", "multiad.cli", "make-synthetic", "texture",
              "--root", str(data), "--size", "64"], plugin_path, tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run([sys.executable, "-m", "multiad.cli", "-q", "run", "--method", "gaussian",
              "--data", "synthetic", "--root", str(data), "--category", "texture",
              "--out", str(tmp_path / "run"), *SMALL], plugin_path, tmp_path)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["method"] == "gaussian"
    assert metrics["config"]["gaussian"]["sigma"] == 4.0  # its own section, recorded
    assert set(metrics["config"]) == {"method", "data", "teacher", "train", "gaussian"}
    assert metrics["metrics"]["pixel_auroc"] > 0.8  # a real detector, not a placeholder
    # without the package installed, the run's method is unknown, and said so
    r = _run([sys.executable, "-m", "multiad.cli", "evaluate", str(tmp_path / "run")],
             None, tmp_path)
    assert r.returncode != 0 and "'gaussian' unknown" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_profile_runs_it_next_to_the_paper_methods(plugin_path: Path, tmp_path: Path
                                                     ) -> None:
    """``smoke+gaussian`` (``make reproduce PROFILE=smoke METHODS=gaussian``): the smoke
    profile's conditions, its runs in the same results folder, its column in Table 3's
    re-run beside the paper's methods."""
    script = textwrap.dedent(f"""
        from multiad.pipeline.comparison import rerun_table
        from multiad.pipeline.profiles import load_profile
        from multiad.pipeline.results import collect
        from multiad.pipeline.runs import run_job

        prof = load_profile("smoke+gaussian")
        assert prof.methods[-1] == "gaussian" and prof.name == "smoke", prof.methods
        job = prof.jobs["synthetic-texture"]
        done = run_job(prof, job, 0, {str(tmp_path / 'results')!r}, progress=False,
                       method="gaussian")
        assert done["config"]["teacher"]["backbone"] == "efficientnet_lite0"
        assert done["config"]["data"]["image_size"] == 64  # the profile's conditions
        df = collect({str(tmp_path / 'results')!r}, baselines=True)
        print(rerun_table(df, "industrial").to_string())
    """)
    r = _run([sys.executable, "-c", script], plugin_path, REPO)
    assert r.returncode == 0, r.stderr
    assert "Layer Gaussian" in r.stdout


def test_a_broken_or_clashing_plugin_is_named_and_left_out(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "bad_plugins").mkdir(parents=True)
    (site / "bad_plugins" / "__init__.py").write_text("")
    (site / "bad_plugins" / "broken.py").write_text("raise ImportError('no such thing')\n")
    (site / "bad_plugins" / "clash.py").write_text(textwrap.dedent("""
        from multiad.methods.padim.method import Padim

        class MyPadim(Padim):
            name = "padim"
    """))
    info = site / "bad_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[multiad.methods]\nbroken = bad_plugins.broken\nclash = bad_plugins.clash:MyPadim\n")
    r = _run([sys.executable, "-c", "from multiad.methods import METHODS; print(list(METHODS))"],
             site, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "'broken'" in r.stderr and "no such thing" in r.stderr
    assert "'clash'" in r.stderr and "is taken by multiad.methods.padim.method.Padim" in r.stderr
    assert "padim" in r.stdout and "multiad" in r.stdout
