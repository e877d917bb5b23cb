"""The authors' Table 4 augmentations: their RandAugment and their Mixup, and the presets' choice.

Every RandAugment operation is compared pixel for pixel with Pillow, which the authors' code
applies to uint8 images, using the released code's ranges, fills and resampling filters.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps

from cifar10s.training.augment import (
    AUTHORS_RANDAUGMENT_OPS,
    AuthorsRandAugment,
    Cutout,
    Mixup,
    RandAugment,
    RandomCropFlip,
    build_augmentation,
)
from cifar10s.training.augment.authors import (
    CUTOUT_OP_FILL,
    GREY_FILL,
    SIGNED_OPS,
    apply_authors_op,
    authors_randaugment_ranges,
)
from cifar10s.training.presets import METHODS, diff_from_paper, paper_method, resolve_preset

pytestmark = pytest.mark.usefixtures("one_thread")

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _images255(n: int, seed: int = 0) -> torch.Tensor:
    """float32 (n, 3, 32, 32), integer values 0..255: smooth noise, plus images that reach the
    special cases (low contrast, a constant image, few grey levels, pure noise)."""
    g = _gen(seed)
    coarse = torch.randint(0, 256, (n, 3, 8, 8), generator=g).float()
    x = F.interpolate(coarse, size=32, mode="bilinear", align_corners=False)
    x = (x + torch.randint(-12, 13, x.shape, generator=g)).round().clamp(0, 255)
    if n >= 8:
        x[0] = (x[0] / 4).round() + 40  # low contrast
        x[1] = 77.0  # constant: autocontrast / equalize leave it alone
        x[2] = torch.div(x[2], 64, rounding_mode="floor") * 64 + 3  # four levels per channel
        x[3] = torch.randint(0, 256, (3, 32, 32), generator=g).float()
    return x


def _batch(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    x = _images255(n, seed) / 255
    y = torch.randint(0, 10, (n,), generator=_gen(seed + 1))
    return x, y


# ------------------------------------------------------------------------------ Pillow reference

_AFFINE = Image.Transform.AFFINE
_BICUBIC = Image.Resampling.BICUBIC


def _pil_op(img: Image.Image, op: str, m: float, cy: int, cx: int) -> Image.Image:
    """One operation on a PIL image as the released code calls Pillow (``m`` signed already)."""
    grey = (128, 128, 128)
    w, h = img.size
    if op == "ShearX":
        return img.transform(img.size, _AFFINE, (1, m, 0, 0, 1, 0), _BICUBIC, fillcolor=grey)
    if op == "ShearY":
        return img.transform(img.size, _AFFINE, (1, 0, 0, m, 1, 0), _BICUBIC, fillcolor=grey)
    if op == "TranslateX":
        return img.transform(img.size, _AFFINE, (1, 0, m * w, 0, 1, 0), fillcolor=grey)
    if op == "TranslateY":
        return img.transform(img.size, _AFFINE, (1, 0, 0, 0, 1, m * h), fillcolor=grey)
    if op == "Rotate":
        rot = img.convert("RGBA").rotate(m)
        return Image.composite(rot, Image.new("RGBA", rot.size, (128,) * 4), rot).convert("RGB")
    if op == "Cutout":
        out = img.copy()
        px = out.load()
        half = int(m) // 2
        for i in range(max(0, cx - half), min(w, cx + half)):
            for j in range(max(0, cy - half), min(h, cy + half)):
                px[i, j] = (125, 122, 113)
        return out
    if op == "Invert":
        return ImageOps.invert(img)
    if op == "AutoContrast":
        return ImageOps.autocontrast(img)
    if op == "Equalize":
        return ImageOps.equalize(img)
    if op == "Posterize":
        return ImageOps.posterize(img, int(m))
    if op == "Solarize":
        return ImageOps.solarize(img, m)
    enhancer = {"Brightness": ImageEnhance.Brightness, "Color": ImageEnhance.Color,
                "Contrast": ImageEnhance.Contrast, "Sharpness": ImageEnhance.Sharpness}[op]
    return enhancer(img).enhance(1 + m)


def _to_pil(v: torch.Tensor) -> Image.Image:
    return Image.fromarray(v.permute(1, 2, 0).numpy().astype(np.uint8))


def _from_pil(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).astype(np.float32)).permute(2, 0, 1)


# ---------------------------------------------------------------------------------- op table


def test_op_list_and_ranges_are_the_released_codes():
    assert len(AUTHORS_RANDAUGMENT_OPS) == 15 and len(set(AUTHORS_RANDAUGMENT_OPS)) == 15
    assert {"Invert", "Cutout"} <= set(AUTHORS_RANDAUGMENT_OPS) and "Identity" not in AUTHORS_RANDAUGMENT_OPS
    r = authors_randaugment_ranges()
    assert set(r) == set(AUTHORS_RANDAUGMENT_OPS) and all(v.shape == (10,) for v in r.values())
    assert r["Posterize"].tolist() == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]
    assert r["Cutout"].tolist() == [0, 2, 4, 7, 9, 11, 13, 16, 18, 20]
    assert torch.allclose(r["Solarize"], torch.tensor([256 - 256 * k / 9 for k in range(10)], dtype=torch.float64))
    for op, top in [("ShearX", 0.3), ("ShearY", 0.3), ("TranslateX", 150 / 331), ("TranslateY", 150 / 331),
                    ("Rotate", 30.0), ("Brightness", 0.9), ("Color", 0.9), ("Contrast", 0.9), ("Sharpness", 0.9)]:
        assert torch.allclose(r[op], torch.linspace(0, top, 10, dtype=torch.float64)), op
    assert SIGNED_OPS == {"ShearX", "ShearY", "TranslateX", "TranslateY", "Brightness", "Color", "Contrast",
                          "Sharpness"}  # rotation is always counter-clockwise
    assert GREY_FILL == 128 and CUTOUT_OP_FILL == (125, 122, 113)


# ------------------------------------------------------------------- each op against Pillow


@pytest.mark.parametrize("op", AUTHORS_RANDAUGMENT_OPS)
def test_op_matches_pillow_pixel_for_pixel(op):
    n = 18
    v = _images255(n, seed=3)
    g = _gen(7)
    levels = torch.randint(1, 10, (n,), generator=g)
    signs = torch.randint(0, 2, (n,), generator=g).double() * 2 - 1
    m = authors_randaugment_ranges()[op][levels]
    if op in SIGNED_OPS:
        m = m * signs
    cy, cx = torch.randint(0, 32, (n,), generator=g), torch.randint(0, 32, (n,), generator=g)
    ours = apply_authors_op(v, op, m, cy, cx)
    assert ours.shape == v.shape and ours.dtype == v.dtype
    assert torch.equal(ours, ours.round()) and float(ours.min()) >= 0 and float(ours.max()) <= 255
    for i in range(n):
        ref = _from_pil(_pil_op(_to_pil(v[i]), op, float(m[i]), int(cy[i]), int(cx[i])))
        assert torch.equal(ours[i], ref), f"{op}, image {i}, magnitude {float(m[i])}"


def test_op_semantics_on_a_small_batch():
    v = _images255(8, seed=1)
    assert torch.equal(apply_authors_op(v, "Invert"), 255 - v)
    # Cutout: a 2*(m//2) square at rows/cols [c - m//2, c + m//2), clipped, filled (125, 122, 113)
    out = apply_authors_op(v, "Cutout", torch.tensor([16.0, 7.0] * 4), torch.tensor([10, 0] * 4), torch.tensor([20, 31] * 4))
    fill = torch.tensor(CUTOUT_OP_FILL).view(3, 1, 1)
    assert torch.equal(out[0, :, 2:18, 12:28], fill.expand(3, 16, 16))
    changed = (out[0] != v[0]).any(0)
    assert not changed[:2].any() and not changed[18:].any() and not changed[:, :12].any() and not changed[:, 28:].any()
    assert torch.equal(out[1, :, 0:3, 28:32], fill.expand(3, 3, 4))  # side 6 around (0, 31), clipped
    assert int((out[1] != v[1]).any(0).sum()) <= 12
    # translation by 4.8 px moves content by round(4.8) = 5 px and fills grey
    out = apply_authors_op(v, "TranslateX", torch.full((8,), 4.8 / 32))
    assert torch.equal(out[:, :, :, :27], v[:, :, :, 5:32]) and bool((out[:, :, :, 27:] == GREY_FILL).all())
    out = apply_authors_op(v, "TranslateY", torch.full((8,), -4.8 / 32))
    assert torch.equal(out[:, :, 5:, :], v[:, :, :27, :]) and bool((out[:, :, :5, :] == GREY_FILL).all())
    # posterize 4 bits, solarize at 128, brightness 0.5
    assert torch.equal(apply_authors_op(v, "Posterize", 4.0), torch.div(v, 16, rounding_mode="floor") * 16)
    assert torch.equal(apply_authors_op(v, "Solarize", 128.0), torch.where(v < 128, v, 255 - v))
    assert torch.equal(apply_authors_op(v, "Brightness", -0.5), torch.floor(v * 0.5))
    # equalize / autocontrast spread a low-contrast image to the full range; a constant one is kept
    for op in ("Equalize", "AutoContrast"):
        out = apply_authors_op(v, op)
        assert float(out[0].amin()) == 0 and float(out[0].amax()) == 255, op
        assert torch.equal(out[1], v[1]), op
    # rotate by 30 degrees: the centre stays, the corners turn grey
    out = apply_authors_op(v, "Rotate", 30.0)
    assert bool((out[:, :, 0, 0] == GREY_FILL).all()) and torch.equal(out[:, :, 16, 16], v[:, :, 16, 16])
    # ShearX 0.3 reads row y at x + 0.3 (y + 0.5): the grey wedge on the right grows with y
    out = apply_authors_op(v, "ShearX", 0.3)
    grey = (out == GREY_FILL).all(1)  # (N, H, W)
    assert bool(grey[:, 31, 23:].all()) and not bool(grey[:, 31, 22].any())
    assert not bool(grey[:, 0].any()) and bool(grey[:, 15, 27:].all()) and not bool(grey[:, 15, 26].any())
    with pytest.raises(ValueError, match="Identity"):
        apply_authors_op(v, "Identity")


# ---------------------------------------------------------------------- the stage, batched


def test_stage_shapes_dtypes_range():
    for dtype in (torch.float32, torch.float64):
        x, y = _batch(32, seed=2)
        x = x.to(dtype)
        out, t = build_augmentation("randaugment")(x, y, _gen(0))
        assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
        assert float(out.min()) >= 0 and float(out.max()) <= 1
        assert torch.allclose(out * 255, (out * 255).round(), atol=1e-4)  # multiples of 1/255
        assert torch.equal(t, F.one_hot(y, 10).float())


def test_stage_is_deterministic_and_leaves_the_global_rng_alone():
    x, y = _batch(48, seed=4)
    aug = build_augmentation("randaugment")
    state = torch.get_rng_state()
    a, b = aug(x, y, _gen(11)), aug(x, y, _gen(11))
    assert torch.equal(a[0], b[0])
    assert not torch.equal(a[0], aug(x, y, _gen(12))[0])
    assert torch.equal(state, torch.get_rng_state())


def test_pipeline_is_crop_flip_then_authors_randaugment():
    x, y = _batch(32, seed=5)
    out, _ = build_augmentation("randaugment")(x, y, _gen(3))
    g = _gen(3)
    xc, t = RandomCropFlip(padding=4)(x, F.one_hot(y, 10).float(), g)
    ref, _ = AuthorsRandAugment()(xc, t, g)
    assert torch.equal(out, ref)
    assert [type(s) for s in build_augmentation("randaugment").stages] == [RandomCropFlip, AuthorsRandAugment]
    assert [type(s) for s in build_augmentation("randaugment-tv").stages] == [RandomCropFlip, RandAugment]
    kinds = [type(s) for s in build_augmentation("mixup+cutout+randaugment").stages]
    assert kinds == [RandomCropFlip, AuthorsRandAugment, Cutout, Mixup]


def test_stage_composes_the_ops_per_image():
    """Each image gets exactly its own two draws, applied in order with its own magnitudes."""
    x, _ = _batch(40, seed=6)
    ra = AuthorsRandAugment()
    p = ra.get_params(x, _gen(21))
    out, _ = ra.apply(x, torch.zeros(40, 10), p)
    names, mags = p.op_names(), p.magnitudes()
    for i in range(40):
        v = (x[i : i + 1] * 255).round()
        for k in range(2):
            if bool(p.apply[i, k]):
                v = apply_authors_op(v, names[i][k], mags[i, k], p.center_y[i, k], p.center_x[i, k])
        assert torch.equal((out[i : i + 1] * 255).round(), v), f"image {i}"


def test_draws_are_per_image_and_independent_of_the_rest_of_the_batch():
    x, _ = _batch(1, seed=7)
    xb = x.expand(64, -1, -1, -1).contiguous()
    ra = AuthorsRandAugment()
    p = ra.get_params(xb, _gen(5))
    assert p.op_index[:16, 0].unique().numel() > 5 and p.level[:16, 0].unique().numel() > 4
    out, _ = ra.apply(xb, torch.zeros(64, 10), p)
    assert torch.unique(out.reshape(64, -1), dim=0).shape[0] > 32
    # an image's result depends on its own draws only, not on which other images share the batch
    keep = torch.tensor([3, 17, 40, 41, 63])
    sub = type(p)(*(getattr(p, f)[keep] for f in ("op_index", "level", "apply", "sign", "center_y", "center_x")))
    part, _ = ra.apply(xb[keep], torch.zeros(5, 10), sub)
    assert torch.equal(part, out[keep])


def test_draw_statistics():
    x = torch.zeros(20000, 3, 32, 32)
    p = AuthorsRandAugment().get_params(x, _gen(9))
    assert p.op_index.shape == (20000, 2)
    assert abs(float(p.apply.float().mean()) - 0.5) < 0.01  # each op applied with p = 0.5
    assert abs(float((~p.apply).all(1).float().mean()) - 0.25) < 0.01  # no op at all for ~1/4
    counts = torch.bincount(p.op_index.flatten(), minlength=15).float()
    assert counts.numel() == 15 and float((counts / counts.mean() - 1).abs().max()) < 0.1
    assert int(p.level.min()) == 1 and int(p.level.max()) == 9  # level 0 never drawn
    lv = torch.bincount(p.level.flatten(), minlength=10).float()[1:]
    assert float((lv / lv.mean() - 1).abs().max()) < 0.1
    assert set(p.sign.unique().tolist()) == {-1.0, 1.0} and abs(float(p.sign.mean())) < 0.02
    assert int(p.center_y.min()) == 0 and int(p.center_y.max()) == 31
    # the two rounds are independent draws
    same = float((p.op_index[:, 0] == p.op_index[:, 1]).float().mean())
    assert abs(same - 1 / 15) < 0.01


def test_unapplied_images_come_out_unchanged_and_p_zero_is_identity():
    x, _ = _batch(200, seed=8)
    ra = AuthorsRandAugment()
    p = ra.get_params(x, _gen(2))
    out, _ = ra.apply(x, torch.zeros(200, 10), p)
    idle = ~p.apply.any(1)
    assert 20 < int(idle.sum()) < 80
    assert torch.equal(out[idle], x[idle])
    assert not torch.equal(out[~idle], x[~idle])
    out0, _ = AuthorsRandAugment(p=0.0)(x, torch.zeros(200, 10), _gen(2))
    assert torch.equal(out0, x)
    with pytest.raises(ValueError):
        AuthorsRandAugment(min_level=0, max_level=10)


@needs_cuda
def test_cuda_matches_cpu_with_a_cpu_generator():
    x, y = _batch(256, seed=9)
    aug = build_augmentation("randaugment")
    a, _ = aug(x, y, _gen(4))
    b, _ = aug(x.cuda(), y.cuda(), _gen(4))
    assert float((a - b.cpu()).abs().gt(0.5 / 255).float().mean()) < 1e-4


# ------------------------------------------------------------------------------------ Mixup


def test_authors_mixup_mixes_the_raw_batch_with_one_lambda():
    x, y = _batch(64, seed=10)
    out, t = build_augmentation("mixup")(x, y, _gen(13))
    assert [type(s) for s in build_augmentation("mixup").stages] == [Mixup]  # no crop, no flip
    p = Mixup(alpha=1.0).get_params(x, _gen(13))  # the pipeline draws nothing before Mixup
    lam = float(p.lam[0])
    assert bool((p.lam == lam).all()) and 0 < lam < 1  # one lambda for the whole batch
    assert sorted(p.index.tolist()) == list(range(64))
    assert torch.allclose(out, lam * x + (1 - lam) * x[p.index], atol=1e-6)
    expect = lam * F.one_hot(y, 10).float() + (1 - lam) * F.one_hot(y[p.index], 10).float()
    assert torch.allclose(t, expect, atol=1e-6) and torch.allclose(t.sum(1), torch.ones(64))
    # the released code's loss, lam * CE(pred, y) + (1 - lam) * CE(pred, y[perm]), equals the
    # soft-target cross-entropy on these targets; so does its accuracy rule
    logits = torch.randn(64, 10, generator=_gen(1))
    theirs = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[p.index])
    assert torch.allclose(F.cross_entropy(logits, t), theirs, atol=1e-6)
    pred = logits.argmax(1)
    their_acc = lam * (pred == y).sum() + (1 - lam) * (pred == y[p.index]).sum()
    assert torch.allclose(t.gather(1, pred[:, None]).sum(), their_acc.float(), atol=1e-4)


def test_standard_mixup_crops_and_flips_first():
    x, y = _batch(32, seed=11)
    out, _ = build_augmentation("standard+mixup")(x, y, _gen(6))
    g = _gen(6)
    xc, t = RandomCropFlip()(x, F.one_hot(y, 10).float(), g)
    ref, _ = Mixup(1.0)(xc, t, g)
    assert torch.equal(out, ref) and not torch.allclose(out, build_augmentation("mixup")(x, y, _gen(6))[0])
    assert build_augmentation("Mixup+Standard").name == "standard+mixup"


@pytest.mark.parametrize("bad", ["randaugment+randaugment-tv", "randaugment-torchvision", "mixup-authors"])
def test_bad_variant_names(bad):
    with pytest.raises(ValueError, match="randaugment-tv"):
        build_augmentation(bad)


# ---------------------------------------------------------------------------------- presets


@pytest.mark.parametrize("method", ["mixup", "randaugment", "at+mixup", "at+randaugment"])
def test_paper_preset_uses_the_authors_variants(method):
    cfg = resolve_preset("paper", "resnet18", method=method)
    aug = build_augmentation(cfg.augmentation)
    kinds = [type(s) for s in aug.stages]
    if "mixup" in method:
        assert cfg.augmentation == "mixup" and kinds == [Mixup]
    else:
        assert cfg.augmentation == "randaugment" and kinds == [RandomCropFlip, AuthorsRandAugment]
    assert paper_method(cfg) == method and diff_from_paper(cfg) == {}
    assert cfg.to_dict()["augmentation"] == cfg.augmentation  # the record names the variant


@pytest.mark.parametrize("method, other, table4", [
    ("randaugment", "randaugment-tv", "randaugment"),
    ("mixup", "standard+mixup", "mixup"),
    ("at+randaugment", "randaugment-tv", "randaugment"),
    ("at+mixup", "standard+mixup", "mixup"),
])
def test_other_variants_differ_from_the_paper(method, other, table4):
    cfg = resolve_preset("paper", "resnet18", method=method, augmentation=other)
    assert paper_method(cfg) == method
    assert diff_from_paper(cfg) == {"augmentation": {"paper": table4, "used": other}}
    assert {m["augmentation"] for m in METHODS.values()} == {"standard", "mixup", "cutout", "randaugment"}
