"""Fixed facts about CIFAR-10 and this package's on-disk layout."""

from __future__ import annotations

#: Official CIFAR-10 python archive (Krizhevsky, 2009) and its published md5.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_FILENAME = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"

#: md5 of each member of the official archive (the same values torchvision checks).
CIFAR10_MEMBER_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}

#: sha256 over the decoded official arrays (see :func:`cifar10s.sources.cifar10.fingerprint_arrays`).
#: ``None`` until measured on the official archive; until then "official" is decided by the
#: member md5 values above, which identify the same bytes.
CIFAR10_OFFICIAL_FINGERPRINT: str | None = None

#: The official archive's content fingerprints, ``{"train": ..., "test": ...}`` (see
#: :func:`cifar10s.sources.cifar10.content_fingerprint`): what a copy with the same images and
#: labels in another order or other pickle bytes must match to count as the same data. ``None``
#: until measured on the official archive (``cifar10s info`` prints a build's values); until then
#: a full-size copy is reported as ``full-copy``, never as the official archive.
CIFAR10_OFFICIAL_CONTENT: dict[str, str] | None = None

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
NUM_CLASSES = len(CLASSES)
IMAGE_SHAPE = (32, 32, 3)

#: Layout version of the built data folder ``<root>/cifar10s-v<N>/``; bump on incompatible change.
DATA_FORMAT_VERSION = 1

#: The EM recipe of the release (``cifar10s/data/recipe-v1.json``); results on other recipes are not the paper's data.
DEFAULT_RECIPE = "v1"
