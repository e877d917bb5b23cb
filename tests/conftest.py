"""Shared fixtures: the real CIFAR-10 subset in ../shared and small generated archives."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = REPO.parent / "shared" / "data" / "cifar-10-mini-python.tar.gz"
SHARED_ARCHIVE_MD5 = "dafedb10fc373d716862990ea8084404"


@pytest.fixture(scope="session", autouse=True)
def signing_key_outside_home(tmp_path_factory):
    """Every test that scores signs with a key in a temporary folder, never the user's own."""
    import os

    path = tmp_path_factory.mktemp("signing") / "signing-key.pem"
    before = os.environ.get("CIFAR10S_SIGNING_KEY")
    os.environ["CIFAR10S_SIGNING_KEY"] = str(path)
    yield path
    if before is None:
        os.environ.pop("CIFAR10S_SIGNING_KEY", None)
    else:
        os.environ["CIFAR10S_SIGNING_KEY"] = before


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for the module's tests (and its module-scoped fixtures, set up after
    this one): tiny models run as fast on one, and the float sums stay reproducible when other
    processes share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_archive() -> Path:
    """The real, class-balanced CIFAR-10 subset (10,000 train / 2,000 test) beside the repo."""
    if not SHARED_ARCHIVE.is_file():
        pytest.fail(f"expected the shared CIFAR-10 subset at {SHARED_ARCHIVE} (see ../shared/data/README.md)")
    return SHARED_ARCHIVE


@pytest.fixture(scope="session")
def shared_arrays(shared_archive):
    from cifar10s.sources.cifar10 import load_cifar10

    return load_cifar10(shared_archive)


def batch_pickle(data: np.ndarray, labels: list[int], name: str = "batch") -> bytes:
    """A batch in the official Python-2 pickle layout (bytes keys, protocol 2)."""
    obj = {
        b"batch_label": name.encode(),
        b"labels": labels,
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
    }
    return pickle.dumps(obj, protocol=2)


def make_cifar_archive(path: Path, *, per_batch: int = 20, n_test: int = 20, seed: int = 0) -> Path:
    """Write a tiny archive in the exact official layout with random images."""
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        members[f"data_batch_{i}"] = batch_pickle(data, [int(v) for v in rng.integers(0, 10, per_batch)])
    members["test_batch"] = batch_pickle(
        rng.integers(0, 256, (n_test, 3072), dtype=np.uint8), [int(v) % 10 for v in range(n_test)]
    )
    members["batches.meta"] = pickle.dumps(
        {b"label_names": [c.encode() for c in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                                 "frog", "horse", "ship", "truck")],
         b"num_cases_per_batch": per_batch, b"num_vis": 3072}, protocol=2)
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


@pytest.fixture
def tiny_archive(tmp_path) -> Path:
    return make_cifar_archive(tmp_path / "tiny-cifar.tar.gz")


@pytest.fixture(scope="session")
def built_root(tmp_path_factory, shared_archive) -> Path:
    """A root with 'clean' and 'ops-k1' built once from the shared subset (treat as read-only)."""
    from cifar10s.release.builders import build_variant
    from cifar10s.variants import VariantSpec

    root = tmp_path_factory.mktemp("built")
    build_variant(root, VariantSpec("ops"), cifar10=shared_archive, progress=False)
    return root


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """A root with 'clean' and 'ops-k1' built from a tiny random archive (100 train / 20 test
    images), once per session for the Hub tests (treat as read-only)."""
    from cifar10s.release.builders import build_variant
    from cifar10s.variants import VariantSpec

    archive = make_cifar_archive(tmp_path_factory.mktemp("src") / "tiny-cifar.tar.gz")
    root = tmp_path_factory.mktemp("built")
    build_variant(root, VariantSpec("ops"), cifar10=archive, progress=False)
    return root
