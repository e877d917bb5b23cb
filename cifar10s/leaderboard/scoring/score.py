"""Train a submission on a CIFAR-10-S variant and score it on the clean CIFAR-10 test set.

The process that runs :func:`score_submission` holds the test labels, so it never runs
submission code. In order (1-2: :func:`prepare_scoring`, 3-5: :func:`run_seeds`, 6: :func:`assemble_result`):

1. it reads and checks ``submission.json`` and the submission's files (no import,
   :mod:`.submission`);
2. it reads the training set (hashes checked against its manifest) and the clean test split
   into memory, verifying the test arrays against the package's pins (:mod:`.heldout`),
   before any child process starts;
3. a child imports the entry and reports its hooks (:func:`.validate.inspect_submission`);
4. per seed, a child trains on a private copy of the training set in the seed's work folder, and
   writes logits of the per-epoch test images (no labels) and the final weights as safetensors
   (:func:`.seedruns.train_seed`);
5. one more child runs every seed's weights on the test images and their horizontal flips,
   shuffled together in a secret order (:func:`.seedruns.evaluate_seeds`);
6. this process computes every accuracy, checks (after every child) that no data file changed,
   and only then writes the result, with the flip gap in its ``integrity`` block
   (:mod:`.integrity`).

Results are one JSON file per (submission, training set, preset) in the format of
:mod:`.board.result_file`, signed with this installation's key (:mod:`.board.signing`) and written atomically, with
provenance: dataset manifest hashes, code version, seeds, preset and ``preset_diff``, device,
wall time, and per-seed accuracies with their mean and sample standard deviation. Each seed
trains in its own checkpointed work folder, so an interrupted scoring run resumes and ends with
the same result as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...runtime import resolve_device
from ...store import variant_folder
from ...variants import VariantSpec, parse_variant
from ...paper import compare, format_comparison
from .heldout import HeldOutTestSet
from .integrity import integrity_lines, integrity_record
from .provenance import (STD_DEFINITION, code_version, dataset_provenance, environment,
                         stamp_workdir, summary)
from ..board.result_file import RESULT_FORMAT, SANDBOX_NONE, ResultRecord, data_caveats, write_result
from ..sandbox.bwrap import Sandbox, resolve_sandbox
from .records import SeedResult
from .estimate import state_estimate
from .seedruns import ChildSettings, ScoringInterrupted, child_settings, evaluate_seeds, train_seed
from ..board.signing import SigningKey, load_signing_key
from ..submission import Submission, load_submission
from .validate import inspect_submission

__all__ = [
    "RESULT_FORMAT",
    "PreparedRun",
    "ScoringRequest",
    "ScoringInterrupted",
    "SeedRuns",
    "assemble_result",
    "code_version",
    "data_caveats",
    "dataset_provenance",
    "prepare_scoring",
    "result_stem",
    "run_seeds",
    "score",
    "score_submission",
]

BEST_EPOCH_SELECTION = ("the epoch with the highest accuracy on the per-epoch test images: selected on the test "
                        "set, so optimistic; the leaderboard's score is final_test_acc")
ISOLATION = ("submission code ran only in child processes (python -I -B, new session, minimal environment, "
             "scratch working folder) that held no test labels; every accuracy was computed by the scoring "
             "process from returned logits; 'sandbox' says which operating-system sandbox those children ran in")


def result_stem(sub: Submission, spec: VariantSpec, preset: str) -> str:
    return f"{sub.slug}--{spec.folder_name}--{preset}"


def resolve_config(sub: Submission, preset: str, seed: int, overrides: dict[str, Any] | None = None) -> Any:
    """The TrainConfig of one seed: preset + submission method/defense/overrides + harness overrides."""
    from cifar10s.training.presets import resolve_preset

    changes: dict[str, Any] = dict(sub.overrides)
    changes.update(overrides or {})
    changes["seed"] = int(seed)
    if sub.defense is not None:
        changes.setdefault("defense", sub.defense)
        changes.setdefault("defense_kwargs", dict(sub.defense_kwargs) or None)
    return resolve_preset(preset, sub.model, method=sub.method, **changes)


def _work_root(root: Path, out_dir: Path | None, workdir: str | Path | None, stem: str) -> Path | None:
    work = Path(workdir) if workdir is not None else (out_dir / ".work" / stem if out_dir is not None else None)
    if work is not None and work.resolve().is_relative_to(root):
        raise ValueError(f"the work folder {work} is inside the data root {root}; submission code gets its work "
                         "folder's path, so choose a --workdir (or --out) outside the data root")
    return work


@dataclass(frozen=True)
class ScoringRequest:
    """Everything a scoring run is asked to do, in one value (the command line builds one; see
    :func:`score_submission` for what each field means). ``sandbox`` is required here: True
    detects the sandbox (or raises), False runs without one, a :class:`Sandbox` is used as given."""

    submission: Submission | str | Path
    root: str | Path
    sandbox: bool | Sandbox
    variant: str | VariantSpec = "cifar10s"
    preset: str = "paper"
    seeds: Sequence[int] = (0,)
    device: torch.device | str | None = None
    out: str | Path | None = None
    workdir: str | Path | None = None
    overrides: dict[str, Any] | None = None
    progress: bool = False
    time_limit_s: float | None = None
    stop_after_epoch: int | None = None
    allow_slow: bool = False
    signing_key: str | Path | None = None


def score(request: ScoringRequest, log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Run a :class:`ScoringRequest`: prepare, train one child per seed, evaluate, write the signed result."""
    t_start = time.perf_counter()
    say = log or (lambda _msg: None)
    run = prepare_scoring(request)
    ran = run_seeds(run, stop_after_epoch=request.stop_after_epoch, allow_slow=request.allow_slow, say=say)
    return assemble_result(run, ran, t_start=t_start, say=say)


def score_submission(
    submission: Submission | str | Path,
    root: str | Path,
    *,
    variant: str | VariantSpec = "cifar10s",
    preset: str = "paper",
    seeds: Sequence[int] = (0,),
    device: torch.device | str | None = None,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = False,
    time_limit_s: float | None = None,
    stop_after_epoch: int | None = None,
    allow_slow: bool = False,
    signing_key: str | Path | None = None,
    sandbox: bool | Sandbox = True,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Check, train (one child per seed) and score a submission; return (and write) its result.

    * ``variant``: the training set (``cifar10s`` default, ``clean``, ``em``, ``ops``, ``ops-kK``),
      which must be built under ``root``. The test set is always the clean CIFAR-10 test split.
    * ``out``: folder for the result JSON ``<slug>--<variant>--<preset>.json`` (None: not written).
    * ``workdir``: folder for the per-seed checkpoints (``seed-<k>/``), outside ``root``; default
      ``<out>/.work/<stem>``. Running again with the same folders resumes an interrupted run.
    * ``overrides``: harness-level TrainConfig changes (e.g. ``{"epochs": 1}``); like the preset,
      every resulting difference from the paper's settings is recorded in ``preset_diff``.
    * ``time_limit_s``: the most seconds any one child process may run (default: 10 minutes to
      inspect, 72 hours to train a seed, 2 hours to evaluate); one that runs longer is killed with
      its whole process group and the scoring fails.
    * ``stop_after_epoch``: stop every seed's training after this epoch (testing hook; raises
      :class:`ScoringInterrupted`, like a killed run).
    * ``allow_slow``: for a registered model the training time is estimated from a short timed
      probe on the device and stated before training starts; a run estimated over an hour on a
      CPU raises :class:`~cifar10s.training.estimate.SlowRunError` unless this is set.
    * ``signing_key``: the private key file that signs the result (default: this installation's,
      :func:`.board.signing.default_key_path`, created on first use); read before anything runs.
    * ``sandbox``: True (default) runs every child in the operating-system sandbox
      (:mod:`.sandbox.bwrap`) and raises :class:`~.sandbox.bwrap.SandboxUnavailable` before anything else
      where it cannot start; False runs them without one and the result records
      ``"sandbox": "none"``; a :class:`~.sandbox.bwrap.Sandbox` is used as given.

    Raises :class:`~.submission.SubmissionError` (the submission is at fault),
    :class:`~.sandbox.runner.WorkerFailed` (a child died, hung or returned malformed output) or
    :class:`~cifar10s.store.IntegrityError` (the data is not what the package expects, or changed
    while scoring); no result is written then.
    """
    return score(ScoringRequest(
        submission=submission, root=root, sandbox=sandbox, variant=variant, preset=preset, seeds=tuple(seeds),
        device=device, out=out, workdir=workdir, overrides=overrides, progress=progress, time_limit_s=time_limit_s,
        stop_after_epoch=stop_after_epoch, allow_slow=allow_slow, signing_key=signing_key), log=log)


@dataclass(frozen=True)
class PreparedRun:
    """A scoring run checked and its data loaded, before any child starts (see :func:`prepare_scoring`)."""

    sub: Submission
    spec: VariantSpec
    preset: str
    seeds: list[int]
    overrides: dict[str, Any]
    dev: torch.device
    box: Sandbox | None
    settings: ChildSettings
    out_dir: Path | None
    stem: str
    work_root: Path | None
    key: SigningKey | None
    dataset: dict[str, Any]
    test: HeldOutTestSet
    images: np.ndarray
    labels: np.ndarray
    time_limit_s: float | None


def prepare_scoring(request: ScoringRequest) -> PreparedRun:
    """Everything :func:`score_submission` checks and loads before a child starts.

    The arguments are checked (bad settings fail before anything runs), the sandbox and the
    signing key are found, and the training set (hashes checked, and from the same CIFAR-10 copy
    as the clean test folder: :class:`~cifar10s.dataset.CIFAR10S` refuses a mix) and the held-out
    test split are read into this process.
    """
    from cifar10s.dataset import CIFAR10S
    from cifar10s.training.presets import PRESETS

    r = request
    root, overrides, time_limit_s = r.root, r.overrides, r.time_limit_s
    box = resolve_sandbox(r.sandbox)  # no sandbox, no run (unless asked for none)
    sub = r.submission if isinstance(r.submission, Submission) else load_submission(r.submission)
    spec = r.variant if isinstance(r.variant, VariantSpec) else parse_variant(r.variant)
    preset = r.preset.strip().lower()
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    seeds = [int(s) for s in r.seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers, got {seeds}")
    # as it will read back from a work folder's stamp (an AdversarialConfig becomes its dict)
    overrides = json.loads(json.dumps(overrides or {}, default=lambda o: o.to_dict()))
    resolve_config(sub, preset, seeds[0], overrides)  # bad settings fail before anything runs
    dev = resolve_device(r.device)
    root_path = Path(root).expanduser().resolve()
    out_dir = Path(r.out) if r.out is not None else None
    stem = result_stem(sub, spec, preset)
    work_root = _work_root(root_path, out_dir, r.workdir, stem)
    key = load_signing_key(r.signing_key) if out_dir is not None else None  # a key problem fails now, not after training
    if box is not None:  # the key in use is never visible to a child, wherever it lives
        box = dataclasses.replace(box, secrets=box.secrets + ((str(key.path),) if key is not None else ()))
    settings = child_settings(dev, root_path, root, time_limit_s, r.progress, box, (out_dir, work_root))

    # the data, verified, in this process before any submission code runs
    train_ds = CIFAR10S(root, train=True, variant=spec, verify=True)  # refuses a variant of another source
    dataset = dataset_provenance(root, spec)
    test = HeldOutTestSet(root, watch=(variant_folder(root, spec),))
    images = np.array(train_ds.data, copy=True)
    labels = np.asarray(train_ds.targets, dtype=np.int64)
    del train_ds
    return PreparedRun(sub=sub, spec=spec, preset=preset, seeds=seeds, overrides=overrides, dev=dev, box=box,
                       settings=settings, out_dir=out_dir, stem=stem, work_root=work_root, key=key, dataset=dataset,
                       test=test, images=images, labels=labels, time_limit_s=time_limit_s)


@dataclass(frozen=True)
class SeedRuns:
    """What :func:`run_seeds` gave back: the inspected submission, the first seed's config, a record per seed."""

    sub: Submission
    config: Any
    per_seed: list[SeedResult]


def run_seeds(run: PreparedRun, *, stop_after_epoch: int | None, allow_slow: bool,
              say: Callable[[str], None]) -> SeedRuns:
    """Inspect the submission (if not done yet), train one child per seed, evaluate them all in one more.

    The data folders are checked unchanged after every child and after the last one.
    """
    sub, spec, test, seeds, settings = run.sub, run.spec, run.test, run.seeds, run.settings
    per_seed: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        work_root = run.work_root
        temporary = work_root is None
        if work_root is None:  # nothing to resume from: train in a folder removed afterwards
            work_root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cifar10s-score-")))
        # work folders of something else are refused before any child starts
        stamps = {seed: stamp_workdir(work_root / f"seed-{seed}", {
            "submission_sha256": sub.digest, "variant": spec.folder_name, "preset": run.preset, "seed": seed,
            "overrides": run.overrides, "train_manifest_sha256": run.dataset["manifest_sha256"],
            "test_manifest_sha256": test.provenance["manifest_sha256"], "_eval_order": secrets.randbits(63),
        }) for seed in seeds}
        if not sub.inspected:
            sub = inspect_submission(sub, forbidden=list(settings.forbidden), time_limit_s=run.time_limit_s,
                                     sandbox=settings.sandbox)
            test.check_unchanged()  # after every child: stop as soon as the data folders were touched
        configs = {s: resolve_config(sub, run.preset, s, run.overrides) for s in seeds}
        first = configs[seeds[0]]
        say(f"scoring {sub.name!r} ({sub.model or sub.entry}, method {sub.method}) on {spec.folder_name}, preset "
            f"{run.preset}, seeds {seeds}, device {run.dev}")
        state_estimate(sub, first, len(run.labels), len(seeds), run.dev, allow_slow, say)
        for seed in seeds:
            per_seed.append(train_seed(sub, configs[seed], work_root / f"seed-{seed}", stamps[seed], run.images,
                                       run.labels, test, settings, stop_after_epoch))
            test.check_unchanged()
        per_seed = evaluate_seeds(sub, per_seed, first, test, settings)
        if temporary:
            per_seed = [dataclasses.replace(p, workdir=None) for p in per_seed]
    k = _per_epoch_images(first, test)  # the best epoch is selected on these, the final model on all
    for p in per_seed:
        best = "n/a" if p.best_test_acc is None else f"{100 * p.best_test_acc:.2f}% at epoch {p.best_epoch}"
        say(f"  seed {p.seed}: final clean test accuracy {100 * p.final_test_acc:.2f}% (all {test.num_test} test "
            f"images; flipped {100 * p.flipped_test_acc:.2f}%); best epoch, selected on "
            f"{'the same' if k == test.num_test else f'a fixed {k}-image subset of the'} test images: {best}")
    test.check_unchanged()  # and after the last one, before anything is written
    return SeedRuns(sub, first, per_seed)


def assemble_result(run: PreparedRun, ran: SeedRuns, *, t_start: float, say: Callable[[str], None]) -> dict[str, Any]:
    """The result of the seeds' accuracies with its provenance; reported, and written signed when ``out`` was given."""
    from cifar10s.training.presets import diff_from_paper

    sub, first, per_seed = ran.sub, ran.config, ran.per_seed
    spec, preset, test, dataset, seeds = run.spec, run.preset, run.test, run.dataset, run.seeds
    diff = diff_from_paper(first, first.model_name)
    diff.pop("seed", None)
    config_dict = first.to_dict()
    config_dict.pop("seed", None)
    finals = [p.final_test_acc for p in per_seed]
    comparisons = compare(sub.model, sub.method, spec, finals)
    integrity = integrity_record(per_seed, test.verification)
    record = ResultRecord(
        created_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        submission=sub.describe(),
        dataset=dataset,
        test_set=test.provenance,
        code=code_version(),
        preset=preset,
        preset_diff=diff,
        paper_setting=not diff and sub.defense is None and not sub.overrides and sub.entry is None,
        config=config_dict,
        seeds=seeds,
        device=per_seed[0].device,
        # the numerics that ran (the paper: float32); any difference is also in preset_diff
        precision=per_seed[0].precision,
        environment=environment(run.dev),
        wall_time_s=time.perf_counter() - t_start,
        train_time_s=sum(p.train_time_s for p in per_seed),
        eval={"per_epoch_images": _per_epoch_images(first, test),
              "final_images": test.num_test, "flipped_images": test.num_test,
              "accuracy_units": "fraction in [0, 1]", "best_epoch_selection": BEST_EPOCH_SELECTION},
        isolation=ISOLATION,
        sandbox=run.box.describe() if run.box is not None else SANDBOX_NONE,
        integrity=integrity,
        per_seed=[p.to_record(run.out_dir) for p in per_seed],
        summary={
            "final_test_acc": summary(finals),
            "flipped_test_acc": summary([p.flipped_test_acc for p in per_seed]),
            "best_test_acc": summary([p.best_test_acc for p in per_seed]),
            "std_definition": STD_DEFINITION,
        },
        paper=[c.to_dict() for c in comparisons],
    )
    result = record.to_dict()
    _report(say, sub, result, comparisons, diff, dataset, spec, preset)
    if run.out_dir is not None:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        path = run.out_dir / f"{run.stem}.json"
        result = write_result(path, record, run.key)
        say(f"wrote {path} (signed by key {run.key.key_id if run.key else '?'})")
    return result


def _per_epoch_images(config: Any, test: HeldOutTestSet) -> int:
    return test.num_test if config.eval_subset is None else min(int(config.eval_subset), test.num_test)


def _report(say: Callable[[str], None], sub: Submission, result: dict[str, Any], comparisons: list[Any],
            diff: dict[str, Any], dataset: dict[str, Any], spec: VariantSpec, preset: str) -> None:
    s = result["summary"]["final_test_acc"]
    say(f"{sub.name}: final clean test accuracy {100 * s['mean']:.2f}% ± {100 * s['std']:.2f} over "
        f"{s['n']} seed(s)")
    caveats = data_caveats(dataset)  # no difference from the paper where it would mean nothing: say why instead
    why = "; ".join([f"preset {preset} differs from the paper's settings"] * bool(diff) + caveats) or None
    lines = format_comparison(comparisons, not_comparable=why)
    for line in lines or [f"no paper row for ({sub.model or 'custom model'}, {sub.method}, {spec.folder_name})"]:
        say("  " + line)
    if diff:
        say(f"  note: differs from the paper's settings in {', '.join(sorted(diff))} (preset {preset}); "
            "not comparable with the paper's numbers")
    for caveat in caveats:
        say(f"  note: training data {caveat}; not comparable with the paper's numbers")
    for line in integrity_lines(result["integrity"]):
        say("  " + line)
