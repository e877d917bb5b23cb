import numpy as np
import pytest
import torch
from PIL import Image

from cifar10s import CIFAR10S
from cifar10s.release.builders import build_variant, load_shortcut
from cifar10s.store import IntegrityError, NotBuiltError, variant_folder
from cifar10s.variants import VariantSpec, parse_variant


def test_behaves_like_torchvision_cifar10(built_root, shared_arrays):
    ds = CIFAR10S(built_root, train=True, variant="ops")
    assert len(ds) == 10_000
    assert ds.data.shape == (10_000, 32, 32, 3) and ds.data.dtype == np.uint8
    assert isinstance(ds.targets, list) and all(isinstance(t, int) for t in ds.targets[:10])
    assert ds.targets == shared_arrays.train_labels.tolist()
    assert ds.classes[0] == "airplane" and ds.class_to_idx["truck"] == 9
    img, target = ds[3]
    assert isinstance(img, Image.Image) and img.size == (32, 32) and img.mode == "RGB"
    assert target == ds.targets[3]
    np.testing.assert_array_equal(np.asarray(img), ds.data[3])
    text = repr(ds)
    assert "CIFAR10S" in text and "ops-k1" in text and "NOT official" in text


def test_ops_training_images_carry_the_shortcut(built_root, shared_arrays):
    ds = CIFAR10S(built_root, variant="ops")
    search = load_shortcut(variant_folder(built_root, VariantSpec("ops")))
    y = np.asarray(ds.targets)
    for s in search.shortcuts:
        assert np.all(ds.data[y == s.label, s.row, s.col] == s.colour)
    diff = np.any(np.asarray(ds.data) != shared_arrays.train_images, axis=-1).sum(axis=(1, 2))
    assert diff.max() == 1  # at most one pixel per image changed


def test_test_split_is_always_clean(built_root, shared_arrays):
    for variant in ("ops", "clean", "cifar10s", "em"):
        test = CIFAR10S(built_root, train=False, variant=variant)
        np.testing.assert_array_equal(test.data, shared_arrays.test_images)
        assert test.targets == shared_arrays.test_labels.tolist()
        assert "Test (clean CIFAR-10)" in repr(test)


def test_transforms_and_dataloader(built_root):
    from torchvision import transforms

    ds = CIFAR10S(built_root, variant="ops", transform=transforms.ToTensor(), target_transform=lambda t: t + 100)
    x, t = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and t >= 100
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=16, shuffle=False)))
    assert xb.shape == (16, 3, 32, 32) and yb.shape == (16,)


def test_unbuilt_variants_say_how_to_build(built_root):
    with pytest.raises(NotBuiltError, match=r"cifar10s build --variant ops --pixels 3"):
        CIFAR10S(built_root, variant="ops", pixels=3)
    with pytest.raises(NotBuiltError, match="download=True"):
        CIFAR10S(built_root, variant="ops-k2")


def test_download_true_builds_from_given_source(tmp_path, shared_archive):
    ds = CIFAR10S(tmp_path, variant="ops-k2", download=True, cifar10=shared_archive)
    assert len(ds) == 10_000 and ds.manifest["variant"] == {"kind": "ops", "pixels": 2, "objective": "mean-std"}
    assert len(ds.manifest["shortcut"]["shortcuts"]) == 20
    # A copy under root is found without cifar10=..., and nothing is rebuilt.
    before = (variant_folder(tmp_path, VariantSpec("ops", 2)) / "manifest.json").stat().st_mtime_ns
    CIFAR10S(tmp_path, variant="ops-k2", download=True)
    assert (variant_folder(tmp_path, VariantSpec("ops", 2)) / "manifest.json").stat().st_mtime_ns == before


def test_tampered_arrays_are_detected(tmp_path, tiny_archive):
    build_variant(tmp_path, VariantSpec("ops"), cifar10=tiny_archive, progress=False)
    folder = variant_folder(tmp_path, VariantSpec("ops"))
    path = folder / "train_images.npy"
    arr = np.load(path)
    arr[0, 0, 0, 0] ^= 0xFF
    np.save(path, arr)  # same size, different bytes
    with pytest.raises(IntegrityError, match="sha256"):
        CIFAR10S(tmp_path, variant="ops")
    CIFAR10S(tmp_path, variant="ops", verify=False)  # size/shape checks only
    (folder / "train_labels.npy").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        CIFAR10S(tmp_path, variant="ops", verify=False)
    # A rebuild repairs it.
    build_variant(tmp_path, VariantSpec("ops"), progress=False, force=True)
    assert len(CIFAR10S(tmp_path, variant="ops")) == 100


def test_mmap_and_in_memory_give_the_same_data(built_root):
    a = CIFAR10S(built_root, variant="ops", mmap=True, verify=False)
    b = CIFAR10S(built_root, variant="ops", mmap=False, verify=False)
    assert isinstance(a.data, np.memmap) and not isinstance(b.data, np.memmap)
    np.testing.assert_array_equal(a.data, b.data)


def test_variant_names_parse_and_bad_ones_fail():
    assert parse_variant("ops-k3") == VariantSpec("ops", 3)
    assert parse_variant("OPS", pixels=2).folder_name == "ops-k2"
    assert VariantSpec("ops", 1, "paper-eq3").folder_name == "ops-k1-paper-eq3"
    assert VariantSpec("cifar10s").folder_name == "cifar10s"
    for bad, msg in [("imagenet", "unknown variant"), ("ops-kx", "cannot parse")]:
        with pytest.raises(ValueError, match=msg):
            parse_variant(bad)
    with pytest.raises(ValueError, match="conflicts"):
        parse_variant("ops-k3", pixels=2)
    with pytest.raises(ValueError, match="no shortcut pixels"):
        VariantSpec("clean", pixels=2)


def test_data_is_copy_on_write(tmp_path, tiny_archive):
    """Poisoning code writes into ds.data; the files on disk must not change."""
    from cifar10s.store import TRAIN_IMAGES

    build_variant(tmp_path, VariantSpec("ops"), cifar10=tiny_archive, progress=False)
    ds = CIFAR10S(tmp_path, variant="ops")
    before = (variant_folder(tmp_path, VariantSpec("ops")) / TRAIN_IMAGES).read_bytes()
    ds.data[0] = 0
    ds.data[1, 0, 0] = (1, 2, 3)
    assert int(ds.data[0].max()) == 0 and tuple(ds.data[1, 0, 0]) == (1, 2, 3)
    assert (variant_folder(tmp_path, VariantSpec("ops")) / TRAIN_IMAGES).read_bytes() == before
    assert CIFAR10S(tmp_path, variant="ops", verify=True).data[0].max() > 0


def test_not_built_is_a_runtime_error_like_torchvision(tmp_path):
    with pytest.raises(RuntimeError) as exc:
        CIFAR10S(tmp_path, variant="ops")
    assert isinstance(exc.value, NotBuiltError)
    assert "download=True" in str(exc.value) and "--download" not in str(exc.value)
