"""The jobs a child gets, spelled once: the scorer builds them, the child reads the same class back.

A job travels as ``job.json`` in the child's scratch folder, beside the runner's own keys (task,
nonce, device, threads, the submission); :meth:`TrainJob.from_job` and :meth:`PredictJob.from_job`
pick their fields out of it in the child (:mod:`.worker`). No torch here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ModelToPredict", "PredictJob", "TrainJob"]


def _pick(cls: type, job: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``cls`` in a job dict that also carries the runner's own keys (task, nonce, ...)."""
    return {f.name: job.get(f.name) for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class TrainJob:
    """One seed's training: its config, its work folder and the arrays in the child's scratch folder."""

    config: dict[str, Any]
    workdir: str
    train_images: str
    train_labels: str
    eval_images: str | None = None
    stop_after_epoch: int | None = None

    def to_job(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_job(cls, job: Mapping[str, Any]) -> TrainJob:
        return cls(**_pick(cls, job))


@dataclass(frozen=True)
class ModelToPredict:
    seed: int
    weights: str
    out: str


@dataclass(frozen=True)
class PredictJob:
    """The final evaluation: every seed's weights on one image array (test images and their flips)."""

    images: str
    models: tuple[ModelToPredict, ...]
    num_classes: int
    batch_size: int
    channels_last: bool = False

    def to_job(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_job(cls, job: Mapping[str, Any]) -> PredictJob:
        d = _pick(cls, job)
        d["models"] = tuple(ModelToPredict(**m) for m in d["models"])
        return cls(**d)
