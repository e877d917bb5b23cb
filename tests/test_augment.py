"""Tests for cifar10s.training.augment (batched augmentations) and .defenses."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F2

from cifar10s.training import (
    AUGMENTATIONS,
    DEFENSES,
    RANDAUGMENT_OPS,
    BatchAugmentation,
    Cutout,
    Mixup,
    RandAugment,
    RandomCropFlip,
    build_augmentation,
    build_defense,
)
from cifar10s.training.augment import randaugment_magnitudes

pytestmark = pytest.mark.usefixtures("one_thread")

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="CUDA is not available on this machine")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
ALL_NAMES = AUGMENTATIONS + ("randaugment+cutout", "randaugment-tv+cutout", "cutout+mixup")


def _images_u8(n: int, seed: int = 0, size: int = 32) -> torch.Tensor:
    """Smooth-ish random uint8 images (N, 3, size, size): upsampled noise plus fine noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 256, (n, 3, 8, 8), generator=g).float()
    x = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    x = x + torch.randint(-12, 13, x.shape, generator=g).float()
    return x.round().clamp(0, 255).to(torch.uint8)


def _batch(n: int = 16, seed: int = 0, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    x = _images_u8(n, seed).float().div(255).to(device)
    y = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed + 1)).to(device)
    return x, y


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


# --------------------------------------------------------------------------------- names


def test_names_and_protocol():
    assert AUGMENTATIONS == (
        "none", "standard", "mixup", "standard+mixup", "cutout", "randaugment", "randaugment-tv",
    )
    for name in ALL_NAMES:
        aug = build_augmentation(name)
        assert isinstance(aug, BatchAugmentation)
    assert build_augmentation("Cutout+RandAugment").name == "randaugment+cutout"
    assert build_augmentation("mixup+standard").name == "standard+mixup"
    kinds = [type(s) for s in build_augmentation("mixup+cutout+randaugment-tv").stages]
    assert kinds == [RandomCropFlip, RandAugment, Cutout, Mixup]
    assert build_augmentation("none").stages == ()


@pytest.mark.parametrize("bad", ["foo", "none+mixup", "mixup+mixup", "", "crop"])
def test_unknown_name_lists_valid(bad):
    with pytest.raises(ValueError) as err:
        build_augmentation(bad)
    for valid in AUGMENTATIONS:
        assert repr(valid) in str(err.value)


def test_rejects_uint8_and_missing_generator():
    aug = build_augmentation("standard")
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(TypeError):
        aug(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), y, _gen(0))
    with pytest.raises(TypeError):
        aug(torch.zeros(2, 3, 32, 32), y, None)  # type: ignore[arg-type]


# ------------------------------------------------------------------- shapes and determinism


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ALL_NAMES)
def test_shapes_dtypes_ranges(name, device):
    x, y = _batch(12, device=device)
    xo, t = build_augmentation(name, num_classes=10)(x, y, _gen(3))
    assert xo.shape == x.shape and xo.dtype == x.dtype and xo.device == x.device
    assert t.shape == (12, 10) and t.dtype == torch.float32 and t.device == x.device
    assert float(xo.min()) >= 0.0 and float(xo.max()) <= 1.0
    assert torch.allclose(t.sum(1), torch.ones(12, device=device))
    if "mixup" not in name:
        assert torch.equal(t, torch.nn.functional.one_hot(y, 10).float())


@pytest.mark.parametrize("name", ALL_NAMES)
def test_deterministic_given_seed(name):
    x, y = _batch(16)
    aug = build_augmentation(name)
    a = aug(x, y, _gen(123))
    b = aug(x, y, _gen(123))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    if name != "none":
        c = aug(x, y, _gen(124))
        assert not torch.equal(a[0], c[0])


def test_does_not_touch_global_rng():
    x, y = _batch(8)
    state = torch.get_rng_state()
    for name in ALL_NAMES:
        build_augmentation(name)(x, y, _gen(0))
    assert torch.equal(state, torch.get_rng_state())


# ------------------------------------------------------------------------- crop and flip


def test_standard_matches_per_image_reference():
    x, y = _batch(64, seed=5)
    crop = RandomCropFlip(padding=4)
    params = crop.get_params(x, _gen(7))
    out, _ = build_augmentation("standard")(x, y, _gen(7))  # same draws as `params`
    for i in range(x.shape[0]):
        ref = F2.pad(x[i], [4, 4, 4, 4], fill=0)  # RandomCrop(32, padding=4) pads with zeros
        ref = F2.crop(ref, int(params.top[i]), int(params.left[i]), 32, 32)
        if bool(params.flip[i]):
            ref = F2.horizontal_flip(ref)
        assert torch.equal(out[i], ref), f"image {i}"


def test_standard_is_random_per_image():
    x, y = _batch(1)
    xb, yb = x.expand(128, -1, -1, -1).contiguous(), y.expand(128).contiguous()
    params = RandomCropFlip().get_params(xb, _gen(11))
    assert params.top.unique().numel() == 9 and params.left.unique().numel() == 9  # offsets 0..8
    assert 0 < int(params.flip.sum()) < 128
    out, _ = build_augmentation("standard")(xb, yb, _gen(11))
    distinct = torch.unique(out.reshape(128, -1), dim=0).shape[0]
    assert distinct > 64


# ---------------------------------------------------------------------------------- cutout


def test_cutout_zeroes_one_clipped_16px_hole_per_image():
    b, h, w = 256, 32, 32
    x = torch.rand(b, 3, h, w, generator=_gen(0)) * 0.9 + 0.05  # no zeros in the input
    cut = Cutout(length=16)
    params = cut.get_params(x, _gen(4))
    out, _ = cut(x, torch.zeros(b, 10), _gen(4))
    zero = out == 0
    assert torch.equal(zero[:, 0], zero[:, 1]) and torch.equal(zero[:, 0], zero[:, 2])
    assert torch.equal(out[~zero], x[~zero])
    clipped = 0
    for i in range(b):
        cy, cx = int(params.center_y[i, 0]), int(params.center_x[i, 0])
        y1, y2 = max(0, cy - 8), min(h, cy + 8)
        x1, x2 = max(0, cx - 8), min(w, cx + 8)
        expect = torch.zeros(h, w, dtype=torch.bool)
        expect[y1:y2, x1:x2] = True
        assert torch.equal(zero[i, 0], expect), f"image {i}"
        clipped += int((y2 - y1) * (x2 - x1) < 256)
    assert 0 < clipped < b  # both interior (exactly 16x16) and border-clipped holes occur
    assert torch.unique(torch.stack([params.center_y[:, 0], params.center_x[:, 0]], 1), dim=0).shape[0] > 100


def test_cutout_pipeline_applies_after_crop_flip():
    x, y = _batch(32)
    out, _ = build_augmentation("cutout")(x, y, _gen(9))
    g = _gen(9)
    crop, cut = RandomCropFlip(), Cutout(16)
    xc, _ = crop(x, torch.zeros(32, 10), g)
    xr, _ = cut(xc, torch.zeros(32, 10), g)
    assert torch.equal(out, xr)


# ----------------------------------------------------------------------------------- mixup


def test_mixup_mixes_two_labels_with_drawn_lambda():
    # "standard+mixup": crop+flip, then Mixup (the authors' "mixup" is tested in test_augment_authors.py)
    x, y = _batch(64, seed=2)
    out, t = build_augmentation("standard+mixup")(x, y, _gen(21))
    g = _gen(21)
    xc, t0 = RandomCropFlip()(x, torch.nn.functional.one_hot(y, 10).float(), g)
    mix = Mixup(alpha=1.0)
    p = mix.get_params(xc, g)
    lam = float(p.lam[0])
    assert torch.all(p.lam == lam) and 0.0 <= lam <= 1.0
    assert sorted(p.index.tolist()) == list(range(64))
    assert torch.allclose(out, lam * xc + (1 - lam) * xc[p.index], atol=1e-6)
    onehot = torch.nn.functional.one_hot
    expect = lam * onehot(y, 10).float() + (1 - lam) * onehot(y[p.index], 10).float()
    assert torch.allclose(t, expect, atol=1e-6)
    assert torch.allclose(t.sum(1), torch.ones(64))
    assert int((t > 0).sum(1).max()) <= 2


def test_mixup_lambda_distribution_and_options():
    x = torch.rand(4, 3, 8, 8)
    g = _gen(5)
    lams = torch.stack([Mixup(1.0).get_params(x, g).lam[0] for _ in range(2000)])
    assert 0.45 < float(lams.mean()) < 0.55 and float(lams.min()) < 0.05 and float(lams.max()) > 0.95
    p = Mixup(0.4, per_sample_lambda=True).get_params(torch.rand(32, 3, 8, 8), _gen(1))
    assert p.lam.unique().numel() == 32
    t = torch.eye(4)
    xo, to = Mixup(alpha=0.0)(x, t, _gen(0))
    assert torch.equal(xo, x) and torch.equal(to, t)


# ----------------------------------------------------------------------------- randaugment


def test_randaugment_op_table_matches_torchvision():
    # torchvision's RandAugment keeps its table in a private method; compare against it.
    from torchvision.transforms import RandAugment as TVRandAugment

    ref = TVRandAugment()._augmentation_space(31, (32, 32))
    ours = randaugment_magnitudes(31, 32, 32)
    assert tuple(ref) == RANDAUGMENT_OPS == tuple(ours)
    for op in RANDAUGMENT_OPS:
        assert ref[op][1] == ours[op][1], op
        assert torch.allclose(ref[op][0].float(), ours[op][0].float()), op
    ra = RandAugment()
    assert (ra.num_ops, ra.magnitude, ra.num_magnitude_bins) == (2, 9, 31)
    assert ra.interpolation == InterpolationMode.NEAREST


def test_randaugment_per_image_ops_from_documented_list():
    x, _ = _batch(256, seed=8)
    params = RandAugment().get_params(x, _gen(2))
    assert params.op_index.shape == (256, 2)
    names = {n for row in params.op_names() for n in row}
    assert names == set(RANDAUGMENT_OPS)  # 512 draws over 14 ops: every op occurs
    first = params.op_index[:16, 0]
    assert first.unique().numel() > 4  # images of one batch get different ops
    assert 0 < int(params.negate.sum()) < params.negate.numel()


def test_randaugment_matches_torchvision_per_image():
    from torchvision.transforms.autoaugment import _apply_op  # torchvision's RandAugment op kernel

    x, y = _batch(96, seed=4)
    ra = RandAugment()
    params = ra.get_params(x, _gen(31))
    out, _ = ra(x, torch.zeros(96, 10), _gen(31))
    x8 = (x * 255).round().to(torch.uint8)
    for i in range(96):
        img = x8[i]
        for k in range(ra.num_ops):
            op = RANDAUGMENT_OPS[int(params.op_index[i, k])]
            mag = ra.signed_magnitude(op, bool(params.negate[i, k]), 32, 32)
            img = _apply_op(img, op, mag, interpolation=InterpolationMode.NEAREST, fill=None)
        assert torch.equal((out[i] * 255).round().to(torch.uint8), img), f"image {i}"
    assert torch.equal(out, (out * 255).round() / 255)


def test_randaugment_pipeline_is_random_per_image():
    x, y = _batch(1)
    xb, yb = x.expand(64, -1, -1, -1).contiguous(), y.expand(64).contiguous()
    out, _ = build_augmentation("randaugment-tv")(xb, yb, _gen(17))
    assert torch.unique(out.reshape(64, -1), dim=0).shape[0] > 32


# ------------------------------------------------------------------------------ devices


@needs_cuda
@pytest.mark.parametrize("name", ["standard", "cutout", "mixup"])
def test_cuda_matches_cpu_with_cpu_generator(name):
    x, y = _batch(64)
    aug = build_augmentation(name)
    a = aug(x, y, _gen(5))
    b = aug(x.cuda(), y.cuda(), _gen(5))
    assert torch.allclose(a[0], b[0].cpu(), atol=1e-6) and torch.allclose(a[1], b[1].cpu(), atol=1e-6)


@needs_cuda
def test_cuda_randaugment_close_to_cpu():
    x, y = _batch(128)
    aug = build_augmentation("randaugment-tv")
    a, _ = aug(x, y, _gen(5))
    b, _ = aug(x.cuda(), y.cuda(), _gen(5))
    assert float((a - b.cpu()).abs().gt(1.5 / 255).float().mean()) < 0.01


@needs_cuda
@pytest.mark.parametrize("name", ALL_NAMES)
def test_cuda_generator_drives_cpu_and_cuda_data(name):
    for device in ("cpu", "cuda"):
        x, y = _batch(16, device=device)
        aug = build_augmentation(name)
        a = aug(x, y, _gen(8, "cuda"))
        b = aug(x, y, _gen(8, "cuda"))
        assert a[0].device == x.device and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ------------------------------------------------------------------------------- defenses


def _pil_roundtrip(img_hwc: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img_hwc).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.array(Image.open(buf).convert("RGB"))


def test_defense_names_and_errors():
    assert DEFENSES == ("none", "grayscale", "jpeg", "bitdepth")
    with pytest.raises(ValueError, match="grayscale"):
        build_defense("blur")
    with pytest.raises(ValueError):
        build_defense("jpeg", bits=3)
    with pytest.raises(TypeError):
        build_defense("grayscale")(torch.zeros(2, 3, 32, 32))
    x = _images_u8(4)
    assert torch.equal(build_defense("none")(x), x)


def test_grayscale_equal_channels_and_pil_luma():
    x = _images_u8(32, seed=3)  # NCHW
    out = build_defense("grayscale")(x)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    pil = np.stack([np.array(Image.fromarray(im.permute(1, 2, 0).numpy()).convert("L")) for im in x])
    assert np.array_equal(out[:, 0].numpy(), pil)
    nhwc = x.permute(0, 2, 3, 1).contiguous().numpy()
    out_np = build_defense("grayscale")(nhwc)
    assert isinstance(out_np, np.ndarray) and out_np.shape == nhwc.shape
    assert np.array_equal(out_np, out.permute(0, 2, 3, 1).numpy())


def test_jpeg_changes_image_keeps_shape_deterministic_and_matches_pil():
    x = _images_u8(24, seed=6).permute(0, 2, 3, 1).contiguous()  # NHWC, CIFAR storage layout
    jpeg = build_defense("jpeg")  # quality 10 (ISS)
    a, b = jpeg(x), jpeg(x.clone())
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert (a.float() - x.float()).abs().mean() > 2.0
    pil = np.stack([_pil_roundtrip(im, 10) for im in x.numpy()])
    assert np.array_equal(a.numpy(), pil)
    hi = build_defense("jpeg", quality=95)(x)
    assert (hi.float() - x.float()).abs().mean() < (a.float() - x.float()).abs().mean()
    nchw = build_defense("jpeg")(x.permute(0, 3, 1, 2))
    assert torch.equal(nchw.permute(0, 2, 3, 1), a)
    assert torch.equal(build_defense("jpeg", backend="pil")(x), a)


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_bitdepth_round_to_nearest_level(bits):
    v = torch.arange(256, dtype=torch.uint8).repeat(3, 1).reshape(1, 3, 16, 16)
    out = build_defense("bitdepth", bits=bits)(v)
    levels = (1 << bits) - 1
    allowed = torch.tensor([round(k * 255 / levels) for k in range(levels + 1)])
    assert out.unique().numel() == levels + 1 and torch.isin(out, allowed.to(torch.uint8)).all()
    # nearest level in [0, 1]: |out - in| <= half a level step (+ uint8 rounding)
    assert float((out.float() - v.float()).abs().max()) <= 255 / (2 * levels) + 0.5
    assert torch.equal(build_defense("bitdepth", bits=bits)(out), out)  # idempotent


def test_bitdepth_truncate_is_posterize():
    x = _images_u8(8)
    out = build_defense("bitdepth", bits=3, mode="truncate")(x)
    assert torch.equal(out, F2.posterize(x, 3)) and torch.equal(out & 0b00011111, torch.zeros_like(out))
    default = build_defense("bitdepth")(x)
    assert default.unique().numel() <= 32 and not torch.equal(default, x)
