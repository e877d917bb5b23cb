"""Read CIFAR-10's Python-2 pickles without letting them run code or allocate at will.

``pickle.load`` on a downloaded file calls whatever callables the file names, with whatever
arguments it gives. A CIFAR-10 batch is a dict of bytes, lists of ints and one uint8 array, and
the only calls it needs are numpy's array reconstruction. So the unpickler below resolves exactly
the globals the official batches reference, and each of them to a guard that accepts only the
arguments numpy itself writes:

* ``numpy.ndarray`` is only a marker passed to ``_reconstruct``; calling it (which lets a few
  bytes describe a huge zero-stride array) is refused;
* ``_reconstruct`` only makes the empty placeholder array that ``__setstate__`` then fills, and
  ``__setstate__`` insists that the pickled bytes match the declared shape, so an array is never
  larger than the bytes that hold it;
* ``numpy.dtype`` only makes ``uint8``;
* ``_codecs.encode`` (how Python 3 writes bytes in protocol 2) only latin-1-encodes a string.

Before unpickling, the size and the number of opcodes are bounded, which bounds how many Python
objects the file can create. Anything else raises :class:`UnsafePickleError`.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from typing import Any, BinaryIO

import numpy as np

from .errors import SourceError

try:  # numpy >= 2 moved the module; the shim under the old name warns on import
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # pragma: no cover - numpy < 2
    from numpy.core.multiarray import _reconstruct as _np_reconstruct

#: Largest batch pickle we read: an official batch is about 31 MB (10,000 x 3,072 bytes of pixels
#: plus labels and file names).
MAX_PICKLE_BYTES = 40 * 1024 * 1024
#: Most opcodes a batch may hold: an official one has about 20,000 (one per label and per file
#: name). Each opcode creates at most one object, so this bounds the memory beyond the raw bytes.
MAX_PICKLE_OPCODES = 100_000
#: The only dtype a batch's array may have.
_ALLOWED_DTYPES = frozenset({"u1", "|u1", "uint8"})


class UnsafePickleError(SourceError):
    """A pickle asked for something a CIFAR-10 batch never needs."""


def _refuse(what: str) -> UnsafePickleError:
    return UnsafePickleError(
        f"refusing {what} in a CIFAR-10 batch file: a genuine batch holds only a uint8 array, "
        "lists and strings. The file is corrupt or malicious; delete it and download CIFAR-10 again"
    )


class _Guard:
    """Base of the stand-ins the unpickler hands out (no ``__dict__``, so BUILD cannot alter one)."""

    __slots__ = ()


class _NdarrayMarker(_Guard):
    """``numpy.ndarray`` as it appears in a batch: an argument of ``_reconstruct``, never called."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise _refuse("a direct call of numpy.ndarray (it can fake a huge array from a few bytes)")


_NDARRAY = _NdarrayMarker()


class _Reconstruct(_Guard):
    """numpy's ``_reconstruct(ndarray, (0,), b'b')``: the empty array ``__setstate__`` fills."""

    __slots__ = ()

    def __call__(self, subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
        if (
            subtype is not _NDARRAY
            or type(shape) is not tuple
            or shape != (0,)
            or not isinstance(dtype_code, (str, bytes))
            or dtype_code not in ("b", b"b")
        ):
            raise _refuse(f"numpy _reconstruct with arguments {shape!r}, {dtype_code!r}")
        return _np_reconstruct(np.ndarray, (0,), b"b")


class _Dtype(_Guard):
    """``numpy.dtype(name, align, copy)`` for ``uint8`` only."""

    __slots__ = ()

    def __call__(self, name: Any, align: Any = False, copy: Any = False) -> np.dtype:
        if not isinstance(name, str) or name not in _ALLOWED_DTYPES:
            raise _refuse(f"numpy dtype {str(name)[:40]!r} (only uint8 is used)")
        return np.dtype(name)  # align and copy make no difference for a scalar type


class _Encode(_Guard):
    """``_codecs.encode(text, 'latin1')``: how protocol 2 stores bytes written by Python 3."""

    __slots__ = ()

    def __call__(self, text: Any, encoding: Any = "utf-8") -> bytes:
        if not isinstance(text, str) or not isinstance(encoding, str) or encoding not in ("latin1", "latin-1"):
            raise _refuse(f"_codecs.encode with encoding {str(encoding)[:40]!r}")
        return text.encode("latin-1")


#: (module, name) -> what the unpickler resolves it to. The official batches reference the first
#: three (under numpy's pre-2.0 module name); Python 3 with numpy 2 writes the others.
_GLOBALS: dict[tuple[str, str], _Guard] = {
    ("numpy.core.multiarray", "_reconstruct"): _Reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _Reconstruct(),
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Dtype(),
    ("_codecs", "encode"): _Encode(),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        guard = _GLOBALS.get((module, name))
        if guard is None:
            raise _refuse(f"to load '{module}.{name}'")
        return guard

    def persistent_load(self, pid: Any) -> Any:
        raise _refuse("a persistent id")


def _check_opcodes(raw: bytes) -> None:
    """Walk the opcodes without building anything: bounded count, well-formed stream."""
    for count, _ in enumerate(pickletools.genops(raw), start=1):
        if count > MAX_PICKLE_OPCODES:
            raise _refuse(f"more than {MAX_PICKLE_OPCODES} pickle opcodes (an official batch has about 20,000)")


def load_batch(stream: BinaryIO | bytes, *, name: str = "<batch>", max_bytes: int | None = None) -> dict[str, Any]:
    """Unpickle one CIFAR-10 batch safely and return it with ``str`` keys.

    Python-2 pickles store text as bytes; we decode with latin-1 (as torchvision does) and
    normalise keys such as ``b"data"`` to ``"data"``. ``max_bytes`` defaults to
    :data:`MAX_PICKLE_BYTES`.
    """
    limit = MAX_PICKLE_BYTES if max_bytes is None else max_bytes
    raw = stream if isinstance(stream, bytes) else stream.read(limit + 1)
    if len(raw) > limit:
        raise UnsafePickleError(
            f"{name}: larger than {limit} bytes, so not a CIFAR-10 batch (an official one is about "
            "31 MB); delete it and download CIFAR-10 again"
        )
    try:
        _check_opcodes(raw)
        obj = _RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{name}: {exc}") from None
    except Exception as exc:  # truncated or garbage bytes, or a guard's target rejecting its input
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SourceError(
            f"{name}: not a readable CIFAR-10 batch pickle ({detail}); the file is corrupt: delete it "
            "and download CIFAR-10 again"
        ) from exc
    if not isinstance(obj, dict):
        raise SourceError(f"{name}: expected a dict at the top level, found {type(obj).__name__}; not a CIFAR-10 batch")
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if not isinstance(k, (bytes, str)):
            raise SourceError(f"{name}: key {k!r} is not a string; not a CIFAR-10 batch")
        out[k.decode("latin1") if isinstance(k, bytes) else k] = v
    return out
