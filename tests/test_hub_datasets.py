"""The ``datasets``-native copy of a release: Parquet files, the card's configs, ``load_dataset``.

A release is written to a local folder (:func:`write_release`, the files :func:`publish_release`
uploads) and published to the fake Hub on 127.0.0.1 (see ``fake_hub.py``; nothing leaves
127.0.0.1). Both are then read with ``datasets.load_dataset`` and compared, pixel for pixel and
label for label, with the ``.npy`` arrays they were made from.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import HfFileSystem
from PIL import Image

from cifar10s.constants import CLASSES
from cifar10s.hub.card import dataset_card
from cifar10s.hub.client import pinning_hint, publish_release, write_release
from cifar10s.hub.parquet import ParquetSplit, split_path, write_split
from cifar10s.store import data_dir, verify_folder
from fake_hub import FakeHub, isolate_hf

REPO = "cifar10s/CIFAR-10-S-datasets-test"
TOKEN = "hf_fake_write_token"
VARIANTS = ("clean", "ops-k1")
# huggingface_hub's own LFS upload (data=<file>) triggers this httpx2 deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture(scope="module", autouse=True)
def hub(tmp_path_factory):
    fake = FakeHub()
    mp = pytest.MonkeyPatch()
    isolate_hf(mp, tmp_path_factory.mktemp("hf-home"), fake.url)
    datasets.disable_progress_bars()
    HfFileSystem.clear_instance_cache()  # no listing cached by an earlier test
    yield fake
    HfFileSystem.clear_instance_cache()
    datasets.enable_progress_bars()
    mp.undo()
    fake.close()


@pytest.fixture(scope="module")
def local_release(built, tmp_path_factory) -> Path:
    return write_release(built, VARIANTS, tmp_path_factory.mktemp("out") / "release", repo_id=REPO)


def _arrays(root: Path, variant: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    folder = data_dir(root) / ("clean" if split == "test" else variant)
    return (np.load(folder / f"{split}_images.npy", allow_pickle=False),
            np.load(folder / f"{split}_labels.npy", allow_pickle=False))


def _assert_same(ds: datasets.Dataset, images: np.ndarray, labels: np.ndarray) -> None:
    """Every decoded image and label of ``ds`` equals the arrays, bit for bit."""
    assert ds.num_rows == len(images)
    assert ds.features["label"].names == list(CLASSES)
    assert isinstance(ds.features["image"], datasets.Image)
    got = np.stack([np.asarray(im) for im in ds["image"]])
    assert got.dtype == np.uint8 and got.shape == images.shape
    assert np.array_equal(got, images)
    assert np.array_equal(np.asarray(ds["label"]), labels)


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


# ------------------------------------------------------------------------------ Parquet files


def test_pngs_decode_to_the_array_real_images(shared_arrays, tmp_path):
    images, labels = shared_arrays.train_images[:300], shared_arrays.train_labels[:300]
    path = tmp_path / "x.parquet"
    rows, num_bytes = write_split(images, labels, path, class_names=CLASSES, rows_per_group=128)
    assert rows == 300 and num_bytes > 0
    f = pq.ParquetFile(path)
    assert f.metadata.num_row_groups == 3  # 128 + 128 + 44: written group by group
    table = f.read()
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(row["bytes"])).convert("RGB"))
                        for row in table.column("image").to_pylist()])
    assert np.array_equal(decoded, images)
    assert table.column("image").to_pylist()[0]["path"] is None
    assert np.array_equal(table.column("label").to_numpy(), labels)
    assert not [p for p in tmp_path.iterdir() if p.name != "x.parquet"]  # no temporary file left
    ds = datasets.Dataset.from_parquet(str(path), cache_dir=str(tmp_path / "cache"))
    _assert_same(ds, images, labels)


def test_bad_arrays_are_refused_and_nothing_is_written(tmp_path):
    x = np.zeros((4, 32, 32, 3), np.uint8)
    y = np.arange(4)
    with pytest.raises(ValueError, match="uint8"):
        write_split(x.astype(np.float32), y, tmp_path / "a.parquet", class_names=CLASSES)
    with pytest.raises(ValueError, match="labels must lie in"):
        write_split(x, y + 7, tmp_path / "a.parquet", class_names=CLASSES)
    with pytest.raises(ValueError, match="shape \\(4,\\)"):
        write_split(x, y[:3], tmp_path / "a.parquet", class_names=CLASSES)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------ local release


def test_local_release_loads_with_datasets(built, local_release, tmp_path):
    for variant in VARIANTS:
        ds = datasets.load_dataset(str(local_release), name=variant, cache_dir=str(tmp_path / "cache"))
        assert set(ds) == {"train", "test"}
        for split in ("train", "test"):
            _assert_same(ds[split], *_arrays(built, variant, split))
    # Without a name: the default configuration, the perturbed variant (not clean).
    ds = datasets.load_dataset(str(local_release), split="train", cache_dir=str(tmp_path / "cache"))
    _assert_same(ds, *_arrays(built, "ops-k1", "train"))
    # The package's own layout is still there, unchanged.
    for variant in VARIANTS:
        verify_folder(local_release / variant)


def test_card_yaml_describes_the_files(built, local_release):
    meta = _front_matter((local_release / "README.md").read_text())
    assert meta["license"] == "unknown" and meta["source_datasets"] == ["extended|cifar10"]
    assert meta["task_categories"] == ["image-classification"] and "viewer" not in meta
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == set(VARIANTS)
    assert [c["config_name"] for c in meta["configs"] if c.get("default")] == ["ops-k1"]
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert set(infos) == set(VARIANTS)
    for name in VARIANTS:
        files = {f["split"]: f["path"] for f in configs[name]["data_files"]}
        assert files == {"train": split_path(name, "train"), "test": split_path("clean", "test")}
        info = infos[name]
        assert info["features"][0] == {"name": "image", "dtype": "image"}
        assert info["features"][1]["dtype"]["class_label"]["names"] == {str(i): c for i, c in enumerate(CLASSES)}
        splits = {s["name"]: s for s in info["splits"]}
        for split, rel in files.items():
            assert pq.ParquetFile(local_release / rel).metadata.num_rows == splits[split]["num_examples"]
            assert splits[split]["num_examples"] == len(_arrays(built, name, split)[1])
        assert info["download_size"] == sum((local_release / rel).stat().st_size for rel in files.values())
    on_disk = {p.relative_to(local_release).as_posix() for p in (local_release / "data").rglob("*.parquet")}
    assert on_disk == {f["path"] for c in configs.values() for f in c["data_files"]}
    assert f'load_dataset("{REPO}", name="ops-k1", revision="<commit sha>")' in (local_release / "README.md").read_text()


def test_card_defaults_to_cifar10s_and_needs_every_configuration(built):
    ops = verify_folder(data_dir(built) / "ops-k1", check_hashes=False)
    manifests = {"clean": verify_folder(data_dir(built) / "clean", check_hashes=False), "ops-k1": ops,
                 "cifar10s": {**ops, "variant": {**ops["variant"], "kind": "cifar10s"}}}
    split = ParquetSplit("data/x.parquet", 100, 1, 1)
    parquet = {n: {"train": split, "test": split} for n in manifests}
    meta = _front_matter(dataset_card(manifests, parquet))
    assert meta["configs"][0] == {**meta["configs"][0], "config_name": "cifar10s", "default": True}
    assert sum(bool(c.get("default")) for c in meta["configs"]) == 1
    with pytest.raises(ValueError, match="ops-k1"):
        dataset_card(manifests, {n: v for n, v in parquet.items() if n != "ops-k1"})
    assert _front_matter(dataset_card(manifests))["viewer"] is False  # no Parquet copy: no configs
    assert "configs" not in _front_matter(dataset_card(manifests))


def test_write_release_refuses_a_used_folder(built, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        write_release(built, VARIANTS, tmp_path / "used")
    with pytest.raises(ValueError, match="clean"):
        write_release(built, ["ops"], tmp_path / "new")


# ------------------------------------------------------------------------------ through the Hub


def test_load_dataset_from_the_hub_pinned_by_commit(hub, built, local_release, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="cifar10s.hub"):
        sha = publish_release(built, VARIANTS, REPO, tag="v1", token=TOKEN)
    assert f"revision={sha!r}" in caplog.text and pinning_hint(REPO, sha) in caplog.text
    # What was uploaded is exactly the local release folder.
    tree = hub.tree(REPO, sha)
    local = {p.relative_to(local_release).as_posix() for p in local_release.rglob("*") if p.is_file()}
    assert set(tree) - {".gitattributes"} == local
    for rel in local:
        assert hub.content(REPO, rel, sha) == (local_release / rel).read_bytes(), rel
    assert tree[split_path("ops-k1", "train")].lfs_oid is not None

    cache = str(tmp_path / "cache")
    ds = datasets.load_dataset(REPO, name="ops-k1", revision=sha, cache_dir=cache)
    for split in ("train", "test"):
        _assert_same(ds[split], *_arrays(built, "ops-k1", split))
    clean = datasets.load_dataset(REPO, name="clean", revision=sha, split="train", cache_dir=cache)
    _assert_same(clean, *_arrays(built, "clean", "train"))
    assert any(p.endswith(f"/resolve/{sha}/{split_path('ops-k1', 'train')}") for _, _, p in hub.requests)

    # A later commit moves main (here: a release without ops-k1); the pinned sha still loads ops-k1.
    later = publish_release(built, ["clean"], REPO, token=TOKEN)
    assert later != sha
    with pytest.raises(ValueError, match="ops-k1"):
        datasets.load_dataset(REPO, name="ops-k1", cache_dir=str(tmp_path / "cache-main"))
    again = datasets.load_dataset(REPO, name="ops-k1", revision=sha, split="train", cache_dir=str(tmp_path / "c2"))
    _assert_same(again, *_arrays(built, "ops-k1", "train"))
