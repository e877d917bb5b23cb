"""Read CIFAR-10's Python-2 pickles without letting them run code.

``pickle.load`` on a downloaded file executes whatever callables the file names. The CIFAR-10
batches only need plain containers plus numpy's array reconstruction, so the unpickler below
allows exactly those globals and refuses everything else with :class:`UnsafePickleError`.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, BinaryIO

#: (module, name) pairs a CIFAR-10 batch may reference. The official batches reference numpy's
#: array reconstruction for ``data``; lists, dicts, bytes and ints need no globals at all.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    # Python 3 writes bytes as _codecs.encode(str, "latin1") in protocol 2; it only makes bytes.
    ("_codecs", "encode"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}

try:
    import numpy._core.multiarray  # noqa: F401

    _HAS_NUMPY_CORE_PRIVATE = True
except ImportError:  # numpy < 2
    _HAS_NUMPY_CORE_PRIVATE = False

# Largest pickle we accept: an official batch is ~31 MB; leave generous headroom.
MAX_PICKLE_BYTES = 512 * 1024 * 1024


class UnsafePickleError(ValueError):
    """A pickle asked for something a CIFAR-10 batch never needs."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            if module == "numpy.core.multiarray":  # numpy>=2 moved it; avoid the shim's warning
                module = "numpy._core.multiarray" if _HAS_NUMPY_CORE_PRIVATE else module
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to load '{module}.{name}' from a CIFAR-10 batch file: a genuine batch "
            "contains only arrays, lists and strings. The file is corrupt or malicious; delete "
            "it and download CIFAR-10 again."
        )

    def persistent_load(self, pid: Any) -> Any:  # pragma: no cover - defensive
        raise UnsafePickleError("persistent ids are not allowed in a CIFAR-10 batch file")


def load_batch(stream: BinaryIO | bytes, *, name: str = "<batch>") -> dict[str, Any]:
    """Unpickle one CIFAR-10 batch safely and return it with ``str`` keys.

    Python-2 pickles store text as bytes; we decode with latin-1 (as torchvision does) and
    normalise keys such as ``b"data"`` to ``"data"``.
    """
    raw = stream if isinstance(stream, bytes) else stream.read(MAX_PICKLE_BYTES + 1)
    if len(raw) > MAX_PICKLE_BYTES:
        raise UnsafePickleError(f"{name}: larger than {MAX_PICKLE_BYTES} bytes, not a CIFAR-10 batch")
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # truncated or garbage bytes
        raise ValueError(f"{name}: not a readable CIFAR-10 batch pickle ({exc})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{name}: expected a dict at the top level, found {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}
