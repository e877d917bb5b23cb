"""``cifar10s export``: the release folder with croissant.json, read back with MLCommons' mlcroissant.

The release is written once from the session's tiny built root (100 train / 20 test images); the
Croissant metadata must pass mlcroissant's validation and yield exactly the images and labels
``CIFAR10S`` gives, and a variant that is not built or fails its check leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import mlcroissant as mlc  # the 'croissant' extra, part of 'test'
import numpy as np
import pytest

from cifar10s import CIFAR10S, NotBuiltError
from cifar10s.cli.main import main
from cifar10s.hub.client import write_release
from cifar10s.hub.croissant import CROISSANT
from cifar10s.store import IntegrityError, data_dir

VARIANTS = ["clean", "ops-k1"]
RAI = ("rai:dataCollection", "rai:dataPreprocessingProtocol", "rai:dataUseCases", "rai:dataLimitations",
       "rai:personalSensitiveInformation")


@pytest.fixture(scope="module")
def exported(built, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "release"
    assert main(["export", "--root", str(built), "--out", str(out), "--variants", *VARIANTS]) == 0
    return out


def _records(release: Path, record_set: str) -> tuple[np.ndarray, list[int]]:
    ds = mlc.Dataset(jsonld=str(release / CROISSANT))
    rows = list(ds.records(record_set=record_set))
    images = np.stack([np.asarray(r[f"{record_set}/image"]) for r in rows])
    return images, [int(r[f"{record_set}/label"]) for r in rows]


def test_croissant_validates_and_lists_every_file_with_its_sha256(exported):
    ds = mlc.Dataset(jsonld=str(exported / CROISSANT))  # raises on a validation error
    assert not ds.metadata.ctx.issues.errors and not ds.metadata.ctx.issues.warnings
    meta = json.loads((exported / CROISSANT).read_text())
    on_disk = {p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file()} - {CROISSANT}
    listed = {f["contentUrl"]: f for f in meta["distribution"]}
    assert set(listed) == on_disk  # the arrays, the manifests, the Parquet copy, the card
    for rel, entry in listed.items():
        data = (exported / rel).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["contentSize"] == f"{len(data)} B"
    assert {rs["@id"] for rs in meta["recordSet"]} == {"classes", "clean-train", "ops-k1-train", "test"}
    names = [r["classes/name"] for r in ds.records(record_set="classes")]
    assert names == json.loads((exported / "clean" / "manifest.json").read_text())["classes"] and len(names) == 10
    for field in RAI:
        assert meta[field] and all(len(text) > 80 for text in np.atleast_1d(meta[field]))
    assert "wu2023onepixel" in meta["citeAs"] and "krizhevsky2009learning" in meta["citeAs"]
    assert "CIFAR-10" in meta["license"]


def test_croissant_records_are_the_dataset(built, exported):
    for variant in VARIANTS:
        ours = CIFAR10S(built, train=True, variant=variant.split("-")[0])
        images, labels = _records(exported, f"{variant}-train")
        assert np.array_equal(images, ours.data) and labels == ours.targets
    test = CIFAR10S(built, train=False)
    images, labels = _records(exported, "test")
    assert np.array_equal(images, test.data) and labels == test.targets


def test_croissant_catches_a_changed_file(exported, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    parquet = copy / "data" / "ops-k1" / "train-00000-of-00001.parquet"
    data = bytearray(parquet.read_bytes())
    data[len(data) // 2] ^= 0x01
    parquet.write_bytes(bytes(data))
    with pytest.raises(Exception, match=r"Download\(data/ops-k1/train") as info:
        _records(copy, "ops-k1-train")
    assert "Hash of downloaded file" in str(info.value.__cause__ or info.value.__context__)


def test_export_is_reproducible(built, exported, tmp_path):
    """Byte for byte the same files each time (that publish uploads exactly these files, croissant.json
    included, is checked through a local Hub in tests/test_hub_datasets.py)."""
    again = write_release(built, VARIANTS, tmp_path / "again")
    for path in exported.rglob("*"):
        if path.is_file():
            assert (again / path.relative_to(exported)).read_bytes() == path.read_bytes(), path


def test_export_refuses_an_unbuilt_or_damaged_variant_and_leaves_nothing(built, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(NotBuiltError, match="'em' is not built"):
        write_release(built, ["clean", "em"], out)
    assert main(["export", "--root", str(built), "--out", str(out), "--variants", "clean", "cifar10s"]) == 1
    assert "cifar10s build --variant cifar10s" in capsys.readouterr().err
    damaged = tmp_path / "damaged"
    shutil.copytree(built, damaged)
    f = data_dir(damaged) / "ops-k1" / "train_images.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="train_images.npy"):
        write_release(damaged, VARIANTS, out)
    assert list(tmp_path.iterdir()) == [damaged]  # no out/, no temporary folder beside it
