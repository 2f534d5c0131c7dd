"""The runs of ``make reproduce``: where each lives, its configuration, training and
evaluating it unless it is finished (the plan's steps call these), and reading it back
(the book's pages).

- ``results/<profile>/runs/<job>/seed<k>/``: Multi-AD's main run of a dataset;
- ``results/<profile>/methods/<method>/<job>/seed<k>/``: a baseline re-run under the same
  conditions (the profile's ``baselines``);
- ``results/<profile>/ablation/<ablation>/<setting>/<job>/seed<k>/``: an ablation cell,
  evaluated from the student its training switches need
  (``results/<profile>/trained/<switches>/<job>/seed<k>/``, shared by the cells that train
  the same way).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from multiad.pipeline.profiles import ABLATED, Ablation, Job, Profile, Setting, yaml_value


class Training(NamedTuple):
    """One training a notebook needs: its configuration, its folder, and its dataset."""

    cfg: Any  # RunConfig
    dir: Path
    job: Job


def run_dir(results_dir: str | Path, job: Job, seed: int) -> Path:
    return Path(results_dir) / "runs" / job.id / f"seed{seed}"


def ablation_dir(results_dir: str | Path, ablation: str, setting: str, job: Job,
                 seed: int) -> Path:
    return Path(results_dir) / "ablation" / ablation / setting / job.id / f"seed{seed}"


def method_dir(results_dir: str | Path, method: str, job: Job, seed: int) -> Path:
    """A baseline's run of a dataset/seed (Multi-AD's is :func:`run_dir`)."""
    return Path(results_dir) / "methods" / method / job.id / f"seed{seed}"


def trained_dir(results_dir: str | Path, train_set: dict[str, Any], job: Job, seed: int) -> Path:
    """Where the student for a set of training switches lives: the main run when the
    switches change nothing, else one folder per distinct combination (shared by every
    ablation row that trains the same way, e.g. Table 4's MFF on/off pairs)."""
    if not train_set:
        return run_dir(results_dir, job, seed)
    def word(v: Any) -> str:
        return "-".join(map(str, v)) if isinstance(v, (list, tuple)) else yaml_value(v)

    key = ",".join(f"{k}={word(v)}" for k, v in sorted(train_set.items()))
    return Path(results_dir) / "trained" / key / job.id / f"seed{seed}"


def _finished(metrics: Path, cfg_dict: dict[str, Any], what: str) -> dict[str, Any] | None:
    from multiad.config import RunConfigMismatch
    from multiad.metrics.report import METRIC_KEYS
    from multiad.train import comparable_config

    if not metrics.exists():
        return None
    done = json.loads(metrics.read_text())
    if done.get("epochs_trained") != cfg_dict["train"]["epochs"]:
        return None  # asked for another length: train again (from its checkpoint if kept)
    if comparable_config(done["config"]) != comparable_config(cfg_dict):
        raise RunConfigMismatch(
            f"{metrics}: finished with another configuration than {what} now asks for; "
            "move that folder away to rerun")
    if not set(METRIC_KEYS) <= set(done.get("metrics", {})):
        return None  # evaluated before today's metrics: evaluated again (training is kept)
    return done


def ensure_data(profile: Profile, job: Job) -> None:
    if job.kind == "synthetic" and profile.synthetic:
        from multiad.data.synthetic import make_synthetic

        make_synthetic(job.category or "texture", job.root, seed=0, **profile.synthetic)


def job_training(profile: Profile, job: Job, seed: int, results_dir: str | Path,
                 device: str | None = None, method: str | None = None) -> Training:
    """The training of one dataset/seed's run of ``method`` (default: the profile's main
    method, whose runs are :func:`run_dir`; a baseline's are :func:`method_dir`)."""
    method = method or profile.method
    cfg = profile.run_config(job, seed, device, {"method": method})
    main = method == profile.method
    return Training(cfg, run_dir(results_dir, job, seed) if main
                    else method_dir(results_dir, method, job, seed), job)


def run_job(profile: Profile, job: Job, seed: int, results_dir: str | Path,
            device: str | None = None, progress: bool = True, method: str | None = None
            ) -> dict[str, Any]:
    """Train (or fit) + evaluate one dataset/seed's run of ``method`` unless its metrics
    already exist; return them."""
    from multiad.evaluate import evaluate
    from multiad.train import train

    cfg, out, _ = job_training(profile, job, seed, results_dir, device, method)
    done = _finished(out / "metrics.json", cfg.to_dict(),
                     f"profile {profile.name!r} ({cfg.method}, {job.id})")
    if done is not None:
        return done
    ensure_data(profile, job)
    train(cfg, out, progress=progress)
    return evaluate(out, device=device or cfg.train.device, progress=progress)


def run_ablation(profile: Profile, ablation: Ablation, setting: Setting, job: Job, seed: int,
                 results_dir: str | Path, device: str | None = None, progress: bool = True
                 ) -> dict[str, Any]:
    """One ablation cell: train only when no finished run already trained the same way,
    then evaluate under the setting's post-training switches; return the metrics."""
    from multiad.atomic import write_json
    from multiad.engine.run_lock import claim_run_folder
    from multiad.evaluate import evaluate
    from multiad.train import train

    out = ablation_dir(results_dir, ablation.id, setting.id, job, seed)
    cfg = profile.run_config(job, seed, device, setting.set)
    done = _finished(out / "metrics.json", cfg.to_dict(),
                     f"ablation {ablation.id}/{setting.id} ({job.id})")
    if done is not None:
        return done
    train_set, eval_set = _ablation_switches(profile, setting, job, seed, device)
    src = trained_dir(results_dir, train_set, job, seed)
    if not train_set:
        main = run_job(profile, job, seed, results_dir, device, progress)  # the main run
        if not eval_set:  # this row is the main run itself
            claim_run_folder(out)
            write_json(out / "metrics.json", {**main, "same_as": main["run"]})
            return json.loads((out / "metrics.json").read_text())
    else:
        ensure_data(profile, job)
        train_cfg, _, _ = ablation_training(profile, setting, job, seed, results_dir, device)
        train(train_cfg, src, progress=progress)
    return evaluate(src, device=device or cfg.train.device, progress=progress, out_dir=out,
                    model_overrides=eval_set, save_maps=False, max_overlays=0)


def _ablation_switches(profile: Profile, setting: Setting, job: Job, seed: int,
                       device: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The setting's (training, post-training) switches that differ from the profile's."""
    base = profile.run_config(job, seed, device).to_dict()[ABLATED]
    new = profile.run_config(job, seed, device, setting.set).to_dict()[ABLATED]
    train_set, eval_set = ({k: v for k, v in part.items() if new[k] != base[k]}
                           for part in setting.split())
    return train_set, eval_set


def ablation_training(profile: Profile, setting: Setting, job: Job, seed: int,
                      results_dir: str | Path, device: str | None = None) -> Training:
    """The training an ablation cell needs: the main run's when the setting acts after
    training only, else the student trained with the setting's training switches (shared
    by every row that trains the same way)."""
    train_set, _ = _ablation_switches(profile, setting, job, seed, device)
    if not train_set:
        return job_training(profile, job, seed, results_dir, device)
    cfg = profile.run_config(job, seed, device,
                             {f"{ABLATED}.{k}": v for k, v in train_set.items()})
    return Training(cfg, trained_dir(results_dir, train_set, job, seed), job)


def evaluated(t: Training, mismatch: bool = True) -> bool:
    """A run whose metrics exist for this configuration (its evaluation is not redone).
    A folder finished with another configuration counts as ``mismatch``: evaluated as far
    as training goes (never retrained over), not as far as its evaluation step goes (which
    then runs, and says what is wrong)."""
    from multiad.config import RunConfigMismatch

    try:
        return _finished(t.dir / "metrics.json", t.cfg.to_dict(), str(t.dir)) is not None
    except RunConfigMismatch:
        return mismatch


def finished_job(profile: Profile, job: Job, seed: int, results_dir: str | Path,
                 device: str | None = None, method: str | None = None
                 ) -> dict[str, Any] | None:
    """The metrics of one dataset/seed's run of ``method`` when it is finished (as the
    profile asks for it), else None; a run finished with another configuration raises."""
    cfg, out, _ = job_training(profile, job, seed, results_dir, device, method)
    return _finished(out / "metrics.json", cfg.to_dict(),
                     f"profile {profile.name!r} ({cfg.method}, {job.id})")


def finished_ablation(profile: Profile, ablation: Ablation, setting: Setting, job: Job,
                      seed: int, results_dir: str | Path, device: str | None = None
                      ) -> dict[str, Any] | None:
    """The metrics of one ablation cell when it is finished, else None (also when it was
    finished with another configuration: its evaluation step then says so)."""
    from multiad.config import RunConfigMismatch

    out = ablation_dir(results_dir, ablation.id, setting.id, job, seed)
    cfg = profile.run_config(job, seed, device, setting.set)
    try:
        return _finished(out / "metrics.json", cfg.to_dict(), str(out))
    except RunConfigMismatch:
        return None


def weight_problems(profile: Profile) -> list[str]:
    """Missing or wrong teacher weights of every method's teacher (the paper's WRN-50-2,
    STFPM's ResNet-18, …), for a profile on ImageNet weights."""
    from multiad.backbones import WeightsError, resolve
    from multiad.methods import get_method

    problems = []
    if profile.config.get("teacher.weights", "imagenet") == "imagenet":
        chosen = profile.config.get("teacher.backbone")
        for backbone in dict.fromkeys(chosen or get_method(m).backbone
                                      for m in profile.methods):
            try:
                resolve(backbone, "imagenet")
            except WeightsError as exc:
                problems.append(str(exc))
    return problems


def data_problems(jobs: list[Job]) -> list[str]:
    """The jobs whose dataset is missing or not usable, each with the command that says
    why (synthetic sets are generated, never missing)."""
    from multiad.data.check import check_dataset

    problems = []
    for job in jobs:
        if job.kind == "synthetic":
            continue
        report = check_dataset(job.kind, job.root, job.category)
        if not report.ok:
            problems.append(f"{job.id}: dataset at {job.root} is not usable — run "
                            f"`multiad check-data --data {job.kind} --root {job.root}"
                            + (f" --category {job.category}`" if job.category else "`")
                            + " and see data/README.md")
    return problems


def page_jobs(profile: Profile, pages: list[str] | None = None) -> list[Job]:
    """The jobs the pages train: a dataset page's own, an ablation page's
    (``ablation-<id>``) datasets; None: every page."""
    ids: dict[str, None] = {}
    for page in profile.datasets.values():
        if pages is None or page.id in pages:
            ids.update(dict.fromkeys(j.id for j in page.jobs))
    for ab in profile.ablations.values():
        if pages is None or f"ablation-{ab.id}" in pages:
            ids.update(dict.fromkeys(ab.datasets))
    return [profile.jobs[i] for i in ids]


def preflight(profile: Profile, pages: list[str] | None = None) -> list[str]:
    """Problems that would stop a real reproduction: missing teacher weights, or missing
    data of the jobs the pages in ``pages`` train (:func:`page_jobs`; None: all)."""
    return weight_problems(profile) + data_problems(page_jobs(profile, pages))
