import os
import pickle

import numpy as np
import pytest
from conftest import batch_pickle

from cifar10s.sources.safe_pickle import UnsafePickleError, load_batch


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_real_layout_batch_loads_with_str_keys():
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    batch = load_batch(batch_pickle(data, [3, 7]))
    assert set(batch) >= {"data", "labels", "filenames", "batch_label"}
    np.testing.assert_array_equal(batch["data"], data)
    assert batch["labels"] == [3, 7]


def test_shared_batch_loads(shared_archive, tmp_path):
    import tarfile

    with tarfile.open(shared_archive) as tar:
        raw = tar.extractfile("cifar-10-batches-py/data_batch_1").read()
    batch = load_batch(raw, name="data_batch_1")
    assert batch["data"].shape == (2000, 3072) and batch["data"].dtype == np.uint8


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _RunsCode(str(marker)), b"labels": []}, protocol=2)
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|refusing"):
        load_batch(payload, name="evil_batch")
    assert not marker.exists()


@pytest.mark.parametrize("global_name", [b"cbuiltins\neval\n", b"csubprocess\nPopen\n", b"cnumpy\nload\n"])
def test_any_other_global_is_refused(global_name):
    # A hand-made protocol-0 pickle referencing a forbidden global.
    payload = global_name + b"(S'1+1'\ntR."
    with pytest.raises(UnsafePickleError, match="refusing"):
        load_batch(payload)


def test_garbage_and_wrong_type_give_clear_errors():
    with pytest.raises(ValueError, match="not a readable CIFAR-10 batch"):
        load_batch(b"\x80\x02this is not a pickle")
    with pytest.raises(ValueError, match="expected a dict"):
        load_batch(pickle.dumps([1, 2, 3], protocol=2))
