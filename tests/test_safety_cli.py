"""Run folders cannot run code, delete a user's files or mix two runs; a user's mistake is
one clear line (exit 2), never a traceback. Driven as a user would: ``multiad`` in a
subprocess, its exit code, its message, the files before and after."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

CLI = [sys.executable, "-m", "multiad.cli", "-q"]


def multiad(*args: str | Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MULTIAD_OFFLINE": "1"}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def train_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", "synthetic", "--root", str(root), "--category", "texture",
            "--image-size", "32", "--epochs", "1", "--teacher-weights", "random",
            "--device", "cpu", "--set", "train.batch_size=8",
            "--set", "train.keep_checkpoint=true", "--out", str(out), *extra]


def one_clear_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert "error:" in err.splitlines()[-1], err
    for n in needles:
        assert n in err, (n, err)
    return err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Evil:
    """A pickle that creates ``path`` when unpickled (as ``weights_only=False`` would)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset root, a run folder trained and evaluated through the CLI, checkpoint kept)."""
    from multiad.data.synthetic import make_synthetic

    base = tmp_path_factory.mktemp("safety")
    make_synthetic("texture", base / "data", seed=0, size=64, n_train=8, n_test_good=3,
                   n_test_per_defect=1)
    run = base / "run"
    proc = multiad("run", *train_args(base / "data", run))
    assert proc.returncode == 0, proc.stderr
    return base / "data", run


def copy_run(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run, to)
    return to


def test_a_crafted_model_file_is_not_unpickled(finished_run, tmp_path):
    root, run = finished_run
    run = copy_run(run, tmp_path / "downloaded")
    marker = tmp_path / "code-ran"
    torch.save({"meta": Evil(marker)}, run / "model.pt")
    one_clear_line(multiad("evaluate", run, "--device", "cpu"), "model.pt", "will not unpickle")
    images = root / "texture" / "test" / "hole"
    one_clear_line(multiad("predict", run, images, "--out", tmp_path / "pred", "--device",
                           "cpu"), "will not unpickle")
    assert not marker.exists()


def test_a_crafted_checkpoint_is_not_unpickled_on_resume(finished_run, tmp_path):
    root, run = finished_run
    run = copy_run(run, tmp_path / "downloaded")
    for name in ("model.pt", "train.json"):
        (run / name).unlink()  # an unfinished run: the next command resumes it
    marker = tmp_path / "code-ran"
    torch.save({"epoch": 1, "rng": Evil(marker)}, run / "checkpoint.pt")
    one_clear_line(multiad("train", *train_args(root, run, "--epochs", "2")),
                   "checkpoint.pt", "will not unpickle")
    assert not marker.exists()


def test_a_run_folder_of_an_earlier_version_is_converted_on_request_only(finished_run, tmp_path):
    """Earlier versions stored torch's version as an object; the safe loader refuses it with
    the command that converts it, and that command reads it safely too."""
    from torch.torch_version import TorchVersion

    _, run = finished_run
    run = copy_run(run, tmp_path / "old")
    blob = torch.load(run / "model.pt", weights_only=True)
    blob["meta"]["provenance"]["torch"] = TorchVersion(torch.__version__)
    torch.save(blob, run / "model.pt")
    one_clear_line(multiad("evaluate", run, "--device", "cpu"), "multiad upgrade-run")
    proc = multiad("upgrade-run", run.parent)  # a folder of run folders
    assert proc.returncode == 0 and "1 file(s) rewritten" in proc.stdout, proc.stderr
    assert multiad("evaluate", run, "--device", "cpu").returncode == 0
    assert "0 file(s) rewritten" in multiad("upgrade-run", run).stdout


def test_fresh_never_deletes_a_users_folder(finished_run, tmp_path):
    root, _ = finished_run
    user = tmp_path / "thesis"
    user.mkdir()
    (user / "chapter1.tex").write_text("my work")
    (user / "figures").mkdir()
    (user / "figures" / "a.png").write_bytes(b"png")
    before = snapshot(user)
    for extra in (("--fresh",), ()):
        one_clear_line(multiad("train", *train_args(root, user, *extra)),
                       str(user), "not a run folder")
        assert snapshot(user) == before


def test_fresh_with_a_mistyped_root_keeps_the_finished_run(finished_run, tmp_path):
    root, run = finished_run
    run = copy_run(run, tmp_path / "finished")
    before = snapshot(run)
    typo = root / "textur"  # (a synthetic root that is missing is generated, so: a folder)
    args = [*train_args(typo, run, "--fresh"), "--data", "folder", "--category", "null"]
    one_clear_line(multiad("train", *args), str(typo))
    after = snapshot(run)
    after.pop(".multiad-run.lock", None), before.pop(".multiad-run.lock", None)
    assert after == before


def test_fresh_replaces_a_run_and_keeps_nothing_of_it(finished_run, tmp_path):
    root, run = finished_run
    run = copy_run(run, tmp_path / "finished")
    proc = multiad("train", *train_args(root, run, "--fresh", "--seed", "3"))
    assert proc.returncode == 0, proc.stderr
    assert not (run / "metrics.json").exists() and not (run / "heatmaps").exists()
    import json

    assert json.loads((run / "train.json").read_text())["config"]["train"]["seed"] == 3


HOLD = """
import sys, time
from multiad.engine.run_lock import RunLock, claim_run_folder
lock = RunLock(claim_run_folder(sys.argv[1]), "train").acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_second_process_on_a_run_folder_is_refused_and_a_killed_one_leaves_no_lock(
        finished_run, tmp_path):
    root, _ = finished_run
    out = tmp_path / "busy"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        err = one_clear_line(multiad("train", *train_args(root, out)), str(out),
                             f"pid {holder.pid}")
        assert "another multiad process" in err
        assert not (out / "config.yaml").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    proc = multiad("train", *train_args(root, out))  # the OS dropped the killed one's lock
    assert proc.returncode == 0, proc.stderr


def test_two_trainings_at_once_never_mix_their_files(finished_run, tmp_path):
    """Two real ``multiad train`` on one folder: one trains, the other is refused; what is
    on disk is one run's (config and model agree)."""
    import json

    root, _ = finished_run
    out = tmp_path / "both"
    # A trains long enough (6 epochs, ≥ 10 s) that B, started once A holds the lock, meets it
    a = subprocess.Popen([*CLI, "train", *train_args(root, out, "--seed", "1", "--epochs", "6")],
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / ".multiad-run.lock").exists() or \
            not (out / ".multiad-run.lock").read_text():
        assert time.time() < deadline and a.poll() is None
        time.sleep(0.05)
    b = multiad("train", *train_args(root, out, "--seed", "2", "--epochs", "2"))
    assert a.wait(timeout=300) == 0, a.stderr.read()
    one_clear_line(b, "another multiad process")
    meta = json.loads((out / "train.json").read_text())
    cfg = (out / "config.yaml").read_text()
    assert meta["config"]["train"]["seed"] == 1 and "seed: 1" in cfg


@pytest.mark.parametrize("args, needle", [
    (["--set", "train.epochs=abc"], "train.epochs = 'abc': expected int"),
    (["--set", "train.epochs=1.5"], "train.epochs = 1.5"),
    (["--set", "train.lr=fast"], "train.lr = 'fast': expected float"),
    (["--image-size", "0"], "data.image_size = 0"),
    (["--image-size", "-64"], "data.image_size = -64"),
    (["--image-size", "33"], "multiple of 32"),
    (["--set", "multiad.se=maybe"], "multiad.se = 'maybe': expected bool"),
    (["--set", "multiad.se=!!python/object/apply:os.system ['echo pwned']"], "not a plain YAML"),
    (["--set", "x=1"], "expected section.key=value"),
])
def test_a_wrong_setting_is_one_line_before_anything_is_written(finished_run, tmp_path, args,
                                                                 needle):
    root, _ = finished_run
    out = tmp_path / "never"
    base = train_args(root, out)
    if "train.epochs" in " ".join(args):  # the --epochs flag would win over --set
        i = base.index("--epochs")
        del base[i:i + 2]
    proc = multiad("train", *base, *args)
    one_clear_line(proc, needle)
    assert "pwned" not in proc.stdout
    assert not out.exists()


def test_an_out_folder_under_a_file_is_a_clear_error(finished_run, tmp_path):
    root, _ = finished_run
    (tmp_path / "file").write_text("x")
    one_clear_line(multiad("train", *train_args(root, tmp_path / "file" / "run")),
                   "not a folder")


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(finished_run, tmp_path, capsys,
                                                            monkeypatch):
    import errno

    import multiad.atomic
    from multiad.cli import main

    root, _ = finished_run
    real = multiad.atomic.os.replace

    def full(src, dst):  # the disk fills up as a file is committed
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(multiad.atomic.os, "replace", full)
    out = tmp_path / "run"
    assert main(["-q", "train", *train_args(root, out)]) == 2
    monkeypatch.setattr(multiad.atomic.os, "replace", real)
    err = capsys.readouterr().err
    assert "the disk is full" in err and "Traceback" not in err
    assert not [p for p in out.rglob("*.tmp")]


def test_a_symlink_loop_in_the_data_is_named(finished_run, tmp_path):
    import shutil

    root, _ = finished_run
    data = tmp_path / "data"
    shutil.copytree(root, data)
    good = data / "texture" / "train" / "good"
    (good / "loop.png").symlink_to(good / "loop.png")
    for cmd in (["train", *train_args(data, tmp_path / "run")],
                ["check-data", "--data", "synthetic", "--root", data, "--category", "texture"]):
        proc = multiad(*cmd)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and "loop" in proc.stderr, proc.stderr


def test_an_oversized_image_gets_advice_that_fits(tmp_path, monkeypatch):
    from multiad.data import DataError
    from multiad.data.image_io import read_image

    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the file is over 2× the limit
    with pytest.raises(DataError) as info:
        read_image(tmp_path / "big.png")
    assert "safety limit" in str(info.value) and "downscale" in str(info.value)
    assert "re-download" not in str(info.value).lower()


def test_odd_masks_and_tiny_images_are_warned_before_training(finished_run, tmp_path):
    import shutil

    root, _ = finished_run
    data = tmp_path / "data"
    shutil.copytree(root, data)
    cat = data / "texture"
    mask = next((cat / "ground_truth" / "hole").glob("*.png"))
    arr = np.zeros((64, 64), np.uint8)
    arr[:8, :8], arr[8:16, :8] = 1, 7
    Image.fromarray(arr).save(mask)
    Image.new("RGB", (1, 1)).save(cat / "train" / "good" / "tiny.png")
    # 9 training images: batches of 3 (a batch of one has no BatchNorm statistics at 32 px)
    proc = multiad("train", *train_args(data, tmp_path / "run"), "--set", "train.batch_size=3")
    assert proc.returncode == 0, proc.stderr
    assert "several non-zero mask values" in proc.stderr and mask.name in proc.stderr
    assert "tiny.png (1x1)" in proc.stderr


def test_a_mask_of_another_size_stops_the_run_before_the_first_epoch(finished_run, tmp_path):
    import shutil

    root, _ = finished_run
    data = tmp_path / "data"
    shutil.copytree(root, data)
    mask = next((data / "texture" / "ground_truth" / "hole").glob("*.png"))
    Image.new("L", (48, 64)).save(mask)
    out = tmp_path / "run"
    one_clear_line(multiad("train", *train_args(data, out)), mask.name, "48x64")
    assert not (out / "losses.csv").exists() and not (out / "checkpoint.pt").exists()


def test_predict_skips_a_broken_image_and_never_overwrites_an_overlay(finished_run, tmp_path):
    root, run = finished_run
    images = tmp_path / "mine"
    images.mkdir()
    src = Image.open(next((root / "texture" / "test" / "hole").glob("*.png"))).convert("RGB")
    src.save(images / "x.png")
    src.save(images / "x.jpg")
    src.save(images / "broken.jpg")
    data = (images / "broken.jpg").read_bytes()
    (images / "broken.jpg").write_bytes(data[: len(data) // 3])
    out = tmp_path / "pred"
    proc = multiad("predict", run, images, "--out", out, "--device", "cpu")
    assert proc.returncode == 1 and "broken.jpg" in proc.stderr, proc.stderr
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert sorted(r["image"] for r in rows) == ["x.jpg", "x.png"]
    overlays = {r["overlay"] for r in rows}
    assert len(overlays) == 2 and all((out / o).exists() for o in overlays)
    failed = list(csv.DictReader((out / "failures.csv").open()))
    assert [Path(r["image"]).name for r in failed] == ["broken.jpg"]


@pytest.mark.parametrize("extra", [["--ServerApp.ip=0.0.0.0"], ["--ip", "192.168.1.4"],
                                   ["--token", ""], ["--IdentityProvider.token="]])
def test_the_explorers_server_stays_private(finished_run, tmp_path, extra, capsys):
    from multiad.pipeline.lab import main

    results = tmp_path / "results"
    (results / "runs" / "texture" / "seed0").mkdir(parents=True)
    (results / "runs" / "texture" / "seed0" / "explorer.npz").write_bytes(b"")
    assert main([str(results), "--write-only", *extra]) == 2
    assert "refused" in capsys.readouterr().err
    assert main([str(results), "--write-only", *extra,
                 "--i-know-this-exposes-my-machine"]) == 0


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    """A ValueError from inside torch is a bug of ours, not a user's mistake: not caught."""
    import multiad.train
    from multiad.cli import main

    def broken(*args, **kwargs):
        torch.nn.functional.batch_norm(torch.zeros(1, 4, 1, 1), None, None, training=True)

    monkeypatch.setattr(multiad.train, "train", broken)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        main(["-q", "train", "--teacher-weights", "random", "--out", str(tmp_path / "r")])


def test_run_folders_of_earlier_versions_are_recognised_and_no_other(tmp_path):
    from multiad.engine.run_lock import NotARunFolder, claim_run_folder, is_run_folder

    trained, cell, user, empty = (tmp_path / n for n in ("trained", "cell", "user", "empty"))
    for folder, names in ((trained, ("config.yaml", "model.pt", ".model.pt.abc.tmp")),
                          (cell, ("metrics.json",)), (user, ("metrics.json", "notes.txt"))):
        folder.mkdir()
        for n in names:
            (folder / n).write_text("x")
    empty.mkdir()
    assert is_run_folder(trained) and is_run_folder(cell)
    assert not is_run_folder(user) and not is_run_folder(empty)
    assert (claim_run_folder(cell) / ".multiad-run").is_file()
    assert claim_run_folder(empty) == empty  # an empty folder may become one
    with pytest.raises(NotARunFolder, match="notes.txt"):
        claim_run_folder(user)
