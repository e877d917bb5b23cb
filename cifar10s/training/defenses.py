"""Training-data defenses against availability poisons (applied once, before training).

Each defense maps a CPU uint8 image batch, ``(N, H, W, 3)`` (channels last, the
CIFAR-10 storage layout) or ``(N, 3, H, W)`` (channels first), to a new uint8 batch
of the same shape, layout and type (a NumPy array in gives a NumPy array out).  All
are deterministic.  Layout: a batch whose dimension 1 has size 3 is channels first,
otherwise one whose last dimension has size 3 is channels last; pass
``channels_last=True/False`` to say so explicitly.

They are meant to be applied to the *training set only*, as in the main experiments
of Liu, Zhao & Larson, "Image Shortcut Squeezing: Countering Perturbative
Availability Poisons with Compression", ICML 2023 (arXiv:2301.13838), whose code
compresses training images and leaves test images clean unless asked otherwise.
Applying the same transform to test images is an option of that work, not its
default; nothing here does it implicitly.

* ``grayscale``  -- ISS grayscale compression (ITU-R BT.601 luma, 3 equal channels).
* ``jpeg``       -- ISS JPEG compression, quality 10 by default (ISS "JPEG-10").
* ``bitdepth``   -- bit-depth reduction, Xu, Evans & Qi, "Feature Squeezing:
  Detecting Adversarial Examples in Deep Neural Networks", NDSS 2018 (5 bits by
  default, their CIFAR-10 setting); ``mode="truncate"`` gives the posterize variant
  used as the BDR baseline in the ISS code.
* ``none``       -- identity (returns a copy).
"""

from __future__ import annotations

import functools
import inspect
import typing
import io
import warnings
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF2

from ..checks import check_choice, check_type

__all__ = [
    "DEFENSES",
    "Defense",
    "bit_depth_reduction",
    "build_defense",
    "grayscale",
    "jpeg_compress",
]

#: Valid names for :func:`build_defense`.
DEFENSES: tuple[str, ...] = ("none", "grayscale", "jpeg", "bitdepth")

ImageBatch = Union[Tensor, np.ndarray]
Defense = Callable[[ImageBatch], ImageBatch]


def _to_nchw(images: ImageBatch, channels_last: Optional[bool]) -> tuple[Tensor, bool, bool]:
    """Return (uint8 CPU NCHW tensor, was_channels_last, was_numpy)."""
    was_numpy = isinstance(images, np.ndarray)
    x = torch.from_numpy(np.ascontiguousarray(images)) if was_numpy else images
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor or numpy.ndarray, got {type(images).__name__}")
    if x.dtype != torch.uint8:
        raise TypeError(f"defenses take uint8 images, got dtype {x.dtype}")
    if x.device.type != "cpu":
        raise ValueError(f"defenses run on CPU tensors, got device {x.device}")
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, H, W, 3) or (N, 3, H, W), got shape {tuple(x.shape)}")
    if channels_last is None:
        if x.shape[1] == 3:
            channels_last = False
        elif x.shape[-1] == 3:
            channels_last = True
        else:
            raise ValueError(f"cannot find a 3-channel axis in shape {tuple(x.shape)}")
    if channels_last:
        if x.shape[-1] != 3:
            raise ValueError(f"channels_last=True but shape is {tuple(x.shape)}")
        x = x.permute(0, 3, 1, 2)
    elif x.shape[1] != 3:
        raise ValueError(f"channels_last=False but shape is {tuple(x.shape)}")
    return x.contiguous(), bool(channels_last), was_numpy


def _restore(x: Tensor, channels_last: bool, was_numpy: bool) -> ImageBatch:
    if channels_last:
        x = x.permute(0, 2, 3, 1)
    x = x.contiguous()
    return x.numpy() if was_numpy else x


def grayscale(images: ImageBatch, *, channels_last: Optional[bool] = None) -> ImageBatch:
    """ISS grayscale compression (Liu, Zhao & Larson, ICML 2023).

    Luma ``L = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601), rounded exactly as PIL's
    ``Image.convert("L")`` does (``(19595 R + 38470 G + 7471 B + 2**15) >> 16``), which
    is what ``torchvision.transforms.Grayscale(3)`` computes on the PIL images in the
    ISS code; the luma is copied into all three channels so the shape is unchanged.
    """
    x, cl, was_np = _to_nchw(images, channels_last)
    r, g, b = x.to(torch.int32).unbind(dim=1)
    luma = ((r * 19595 + g * 38470 + b * 7471 + 32768) >> 16).to(torch.uint8)
    out = luma[:, None].expand(-1, 3, -1, -1)
    return _restore(out, cl, was_np)


def _jpeg_torchvision(block: list[Tensor], quality: int) -> list[Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

    with warnings.catch_warnings():
        # torchvision 0.29 marks its image codecs as deprecated in favour of TorchCodec.
        warnings.simplefilter("ignore", DeprecationWarning)
        encoded = encode_jpeg(block, quality=quality)
        return decode_jpeg(encoded, mode=ImageReadMode.RGB)


def _jpeg_pil(block: list[Tensor], quality: int) -> list[Tensor]:
    from PIL import Image

    out = []
    for img in block:
        buf = io.BytesIO()
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as decoded:
            out.append(torch.from_numpy(np.array(decoded.convert("RGB"))).permute(2, 0, 1))
    return out


def jpeg_compress(
    images: ImageBatch,
    *,
    quality: int = 10,
    backend: str = "torchvision",
    channels_last: Optional[bool] = None,
    chunk: int = 4096,
) -> ImageBatch:
    """ISS JPEG compression (Liu, Zhao & Larson, ICML 2023): encode/decode at ``quality``.

    ISS's headline setting is quality 10 ("JPEG-10").  The default backend uses
    ``torchvision.io.encode_jpeg`` / ``decode_jpeg`` (libjpeg-turbo, baseline, 4:2:0
    chroma subsampling) on CPU; ``backend="pil"`` uses Pillow's
    ``save(format="JPEG", quality=q)`` as the ISS code does.  Both are deterministic and
    give identical pixels (checked in the tests); the torchvision backend falls back to
    Pillow if a future torchvision drops its JPEG codecs.
    """
    quality = int(quality)
    if not 1 <= quality <= 100:
        raise ValueError("JPEG quality must be in [1, 100]")
    if backend not in ("torchvision", "pil"):
        raise ValueError("backend must be 'torchvision' or 'pil'")
    x, cl, was_np = _to_nchw(images, channels_last)
    codec = _jpeg_pil
    if backend == "torchvision":
        try:
            from torchvision.io import decode_jpeg, encode_jpeg  # noqa: F401

            codec = _jpeg_torchvision
        except ImportError:  # pragma: no cover - depends on the installed torchvision
            pass
    outs = [torch.stack(codec(list(x[s : s + chunk]), quality)) for s in range(0, x.shape[0], chunk)]
    out = torch.cat(outs) if outs else x.clone()
    return _restore(out, cl, was_np)


def bit_depth_reduction(
    images: ImageBatch, *, bits: int = 5, mode: str = "round", channels_last: Optional[bool] = None
) -> ImageBatch:
    """Bit-depth reduction (Xu, Evans & Qi, "Feature Squeezing", NDSS 2018).

    ``mode="round"`` (default) is Feature Squeezing's squeezer: each value ``v/255`` is
    rounded to the nearest of ``2**bits`` evenly spaced levels in ``[0, 1]`` and mapped
    back to the nearest uint8, i.e. ``round(round(v * L / 255) * 255 / L)`` with
    ``L = 2**bits - 1``; their CIFAR-10 setting is 5 bits.  ``mode="truncate"`` keeps the
    top ``bits`` bits (``torchvision.transforms.v2.functional.posterize``), the bit-depth
    reduction ("BDR") used as a baseline in the ISS code.
    """
    bits = int(bits)
    if not 1 <= bits <= 8:
        raise ValueError("bits must be in [1, 8]")
    x, cl, was_np = _to_nchw(images, channels_last)
    if mode == "round":
        levels = (1 << bits) - 1
        v = x.to(torch.int32)
        q = (v * levels + 127) // 255  # nearest level (no exact ties occur for odd `levels`)
        out = ((q * 255 + levels // 2) // levels).to(torch.uint8)
    elif mode == "truncate":
        out = TF2.posterize(x, bits)
    else:
        raise ValueError("mode must be 'round' or 'truncate'")
    return _restore(out, cl, was_np)


def _identity(images: ImageBatch, *, channels_last: Optional[bool] = None) -> ImageBatch:
    x, cl, was_np = _to_nchw(images, channels_last)
    return _restore(x.clone(), cl, was_np)


_BUILDERS: dict[str, Callable[..., ImageBatch]] = {
    "none": _identity,
    "grayscale": grayscale,
    "jpeg": jpeg_compress,
    "bitdepth": bit_depth_reduction,
}


def build_defense(name: str, **kwargs: Any) -> Defense:
    """Return the defense ``name`` with keyword settings bound, e.g.
    ``build_defense("jpeg", quality=10)``, ``build_defense("bitdepth", bits=3)``.

    The result takes and returns a CPU uint8 batch ``(N, H, W, 3)`` or ``(N, 3, H, W)``
    (see the module docstring).  Unknown names or keywords raise ``ValueError``.
    """
    if not isinstance(name, str):
        raise TypeError(f"defense name must be a str, got {type(name).__name__}")
    key = check_choice("defense", name.strip().lower(), DEFENSES)
    fn = _BUILDERS[key]
    allowed = {
        p.name for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    unknown = set(kwargs) - allowed
    if unknown:
        raise ValueError(f"defense {key!r} takes keywords {sorted(allowed)}, got {sorted(unknown)}")
    hints = typing.get_type_hints(fn)
    for k, v in kwargs.items():
        check_type(f"defense {key!r} keyword {k!r}", v, hints.get(k, Any))
    return functools.partial(fn, **kwargs)
