"""One-Pixel Shortcut (Wu et al., ICLR 2023, Algorithm 1): search and application.

For every class k (in order 0..K-1) and every candidate (pixel p, corner colour xi in {0,1}^3),
the search scores how *consistently far* the class's images are from that colour at that pixel,
then writes the best colour into that pixel of every training image of the class. Two objectives
are offered:

``"mean-std"`` (default)
    What the authors' released code computes: with d[n, c] = |xi_c - x[n, p, c]| for images x in
    [0, 1], ``score = mean(d) / std(d)`` where mean and the *population* std run over all images n
    of the class **and** all 3 channels c together.
``"paper-eq3"``
    The paper's equation 3: with D[n] = sum_c |xi_c - x[n, p, c]| (channels summed per image),
    ``score = mean_n(D) / var_n(D)``.

A (pixel, colour) pair chosen by an earlier class scores 0 for later classes. Ties between exactly
equal scores go to the lowest candidate index ``p * 8 + colour_index`` (row-major pixel index,
colour index ``4*R + 2*G + B``), which is also how the top-k ranking of the multi-pixel variant
(paper Table 5) is ordered.

Speed: instead of touching every image for each of the 8,192 candidates, each class is reduced
once to exact integer per-pixel moments (sums of x and of x*x, or the 3x3 channel products for
eq. 3). Every score is then a closed form of those integers, so the whole 50,000-image search
needs two passes over the data. See ``tests/test_onepixel.py`` for the slow literal reference.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal, Sequence

import numpy as np

from . import strict_json
from .checks import check_choice

Objective = Literal["mean-std", "paper-eq3"]
OBJECTIVES: tuple[str, ...] = ("mean-std", "paper-eq3")

#: Corner colours of the RGB cube, indexed 4*R + 2*G + B as in the authors' code.
CORNER_COLOURS = np.array([[v >> 2 & 1, v >> 1 & 1, v & 1] for v in range(8)], dtype=np.int64)

# Images per chunk so that uint32 sums of squares (<= n * 255**2) cannot overflow.
_CHUNK = 65_536


@dataclass(frozen=True)
class ShortcutPixel:
    """One chosen shortcut: class ``label`` gets ``colour`` (each 0 or 255) at (``row``, ``col``)."""

    label: int
    row: int
    col: int
    colour: tuple[int, int, int]
    score: float
    rank: int = 0  # 0 for the best pixel of the class, 1 for the runner-up, ...


@dataclass(frozen=True)
class ShortcutSearch:
    """The result of a search, as data: enough to inspect it or re-apply it to any images."""

    objective: str
    pixels_per_class: int
    image_shape: tuple[int, int, int]
    shortcuts: tuple[ShortcutPixel, ...]

    def for_class(self, label: int) -> list[ShortcutPixel]:
        return [s for s in self.shortcuts if s.label == label]

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "pixels_per_class": self.pixels_per_class,
            "image_shape": list(self.image_shape),
            "shortcuts": [
                {**asdict(s), "colour": list(s.colour), "score": _json_float(s.score)}
                for s in self.shortcuts
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShortcutSearch:
        try:
            shortcuts = tuple(
                ShortcutPixel(
                    label=int(s["label"]),
                    row=int(s["row"]),
                    col=int(s["col"]),
                    colour=tuple(int(c) for c in s["colour"]),  # type: ignore[arg-type]
                    score=float(s["score"]),
                    rank=int(s.get("rank", 0)),
                )
                for s in data["shortcuts"]
            )
            result = cls(
                objective=str(data["objective"]),
                pixels_per_class=int(data["pixels_per_class"]),
                image_shape=tuple(int(v) for v in data["image_shape"]),  # type: ignore[arg-type]
                shortcuts=shortcuts,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a valid shortcut search record: {exc!r}") from exc
        h, w, _ = result.image_shape
        for s in shortcuts:
            if not (0 <= s.row < h and 0 <= s.col < w) or any(c not in (0, 255) for c in s.colour):
                raise ValueError(f"invalid shortcut entry {s}: position or colour out of range")
        return result

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ShortcutSearch:
        return cls.from_dict(strict_json.loads(text))


def _json_float(v: float) -> float | str:
    return v if np.isfinite(v) else str(v)


def _validate(images: np.ndarray, labels: np.ndarray) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"images must be a uint8 array of shape (N, H, W, 3); got {images.dtype} {images.shape}"
        )
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},); got {labels.shape}")


def class_pixel_sums(images: np.ndarray, *, cross_channel: bool = False) -> tuple[int, np.ndarray, np.ndarray]:
    """Exact integer moments of one class's uint8 images (N, H, W, 3).

    Returns ``(n, s1, s2)`` with ``s1[h, w, c] = sum_n x`` and, for the default,
    ``s2[h, w, c] = sum_n x**2``; with ``cross_channel`` ``s2[h, w, c, d] = sum_n x_c * x_d``.
    """
    n, h, w, c = images.shape
    flat = images.reshape(n, h * w, c)
    s1 = np.zeros((h * w, c), dtype=np.int64)
    s2 = np.zeros((h * w, c, c) if cross_channel else (h * w, c), dtype=np.int64)
    for start in range(0, n, _CHUNK):
        block = flat[start : start + _CHUNK]
        s1 += block.sum(axis=0, dtype=np.uint32)
        if cross_channel:
            planes = [np.ascontiguousarray(block[..., i]) for i in range(c)]
            for i in range(c):
                for j in range(i, c):
                    prod = np.einsum("np,np->p", planes[i], planes[j], dtype=np.uint32, casting="unsafe")
                    s2[:, i, j] += prod
                    if i != j:
                        s2[:, j, i] += prod
        else:
            s2 += np.einsum("npc,npc->pc", block, block, dtype=np.uint32, casting="unsafe")
    return n, s1.reshape(h, w, c), s2.reshape((h, w, c, c) if cross_channel else (h, w, c))


def _ratio(num: np.ndarray, den_sq_or_den: np.ndarray, *, sqrt: bool) -> np.ndarray:
    """num / sqrt(den) (or num / den) with the conventions: x/0 = inf for x > 0, 0/0 = 0."""
    num = num.astype(np.float64)
    den = den_sq_or_den.astype(np.float64)
    if sqrt:
        den = np.sqrt(den)
    out = np.zeros_like(num)
    pos = den > 0
    np.divide(num, den, out=out, where=pos)
    out[(~pos) & (num > 0)] = np.inf
    return out


def candidate_scores(
    n: int, s1: np.ndarray, s2: np.ndarray, objective: Objective = "mean-std"
) -> np.ndarray:
    """Scores of all (pixel, colour) candidates of one class, shape (H*W, 8).

    Works in integer units of 1/255, where every sum is exact; only the final division rounds.
    With xi in {0, 1}: 255*|xi - x/255| = 255*xi + s*X for X = 255*x and s = 1 - 2*xi.
    """
    h, w, c = s1.shape
    xi = CORNER_COLOURS  # (8, 3)
    sign = 1 - 2 * xi  # (8, 3)
    s1f = s1.reshape(h * w, 1, c)  # broadcast against colours
    if objective == "mean-std":
        s2f = s2.reshape(h * w, 1, c)
        # Over the M = 3n values d[n, c]:  T1 = sum d,  T2 = sum d^2  (in units of 1/255).
        t1 = (255 * n * xi + sign * s1f).sum(axis=-1)
        t2 = (255 * 255 * n * xi - 2 * 255 * xi * s1f + s2f).sum(axis=-1)
        m = 3 * n
        # mean / population std = (T1/M) / sqrt(T2/M - (T1/M)^2) = T1 / sqrt(M*T2 - T1^2)
        return _ratio(t1, m * t2 - t1 * t1, sqrt=True)
    if objective == "paper-eq3":
        if s2.shape != (h, w, c, c):
            raise ValueError("paper-eq3 needs cross-channel sums (class_pixel_sums(cross_channel=True))")
        p = s2.reshape(h * w, 1, c, c)
        a = 255 * xi.sum(axis=-1)  # (8,) the constant part of 255*D per image
        lin = (sign * s1f).sum(axis=-1)  # (HW, 8): sum_n sum_c s_c X_c
        quad = np.einsum("kc,pkcd,kd->pk", sign, np.broadcast_to(p, (h * w, 8, c, c)), sign)
        t1 = n * a + lin  # sum_n 255 D_n
        t2 = n * a * a + 2 * a * lin + quad  # sum_n (255 D_n)^2
        # mean / var = (T1/n/255) / ((n*T2 - T1^2) / (n^2 * 255^2)) = 255 * n * T1 / (n*T2 - T1^2)
        return _ratio(255 * n * t1, n * t2 - t1 * t1, sqrt=False)
    check_choice("objective", objective, OBJECTIVES)
    raise AssertionError(f"unreachable: {objective!r}")


def search_shortcuts(
    images: np.ndarray,
    labels: np.ndarray | Sequence[int],
    *,
    pixels_per_class: int = 1,
    objective: Objective = "mean-std",
    num_classes: int | None = None,
) -> ShortcutSearch:
    """Find the shortcut pixel(s) of every class (paper Algorithm 1; Table 5 for k > 1).

    ``images``: uint8 (N, H, W, 3) clean training images; ``labels``: (N,) ints in [0, K).
    Deterministic: no randomness is involved, ties break by candidate index.
    """
    labels = np.asarray(labels)
    images = np.asarray(images)
    _validate(images, labels)
    check_choice("objective", objective, OBJECTIVES)
    h, w, _ = images.shape[1:]
    if not 1 <= pixels_per_class <= h * w:
        raise ValueError(f"pixels_per_class must be in [1, {h * w}], got {pixels_per_class}")
    k_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    taken = np.zeros((h * w, 8), dtype=bool)
    chosen: list[ShortcutPixel] = []
    for label in range(k_classes):
        members = images[labels == label]
        if len(members) == 0:
            continue  # a class absent from the data gets no shortcut
        n, s1, s2 = class_pixel_sums(members, cross_channel=objective == "paper-eq3")
        scores = candidate_scores(n, s1, s2, objective)
        scores[taken] = 0.0
        flat = scores.ravel()
        # Stable sort of -score: highest first, ties by lowest candidate index.
        top = np.argsort(-flat, kind="stable")[:pixels_per_class]
        for rank, idx in enumerate(top):
            p, v = divmod(int(idx), 8)
            chosen.append(
                ShortcutPixel(
                    label=label,
                    row=p // w,
                    col=p % w,
                    colour=tuple(int(255 * b) for b in CORNER_COLOURS[v]),  # type: ignore[arg-type]
                    score=float(flat[idx]),
                    rank=rank,
                )
            )
        taken.ravel()[top] = True
    return ShortcutSearch(
        objective=objective,
        pixels_per_class=pixels_per_class,
        image_shape=(h, w, 3),
        shortcuts=tuple(chosen),
    )


def apply_shortcuts(images: np.ndarray, labels: np.ndarray | Sequence[int], search: ShortcutSearch) -> np.ndarray:
    """Return a copy of ``images`` with every image's class shortcut pixel(s) overwritten.

    Applied to any uint8 images (clean or already EM-perturbed); the pixel replaces whatever was
    there, as in the authors' code.
    """
    labels = np.asarray(labels)
    images = np.asarray(images)
    _validate(images, labels)
    if tuple(images.shape[1:]) != tuple(search.image_shape):
        raise ValueError(f"search was made for images {search.image_shape}, got {images.shape[1:]}")
    out = images.copy()
    for s in search.shortcuts:
        out[labels == s.label, s.row, s.col, :] = np.asarray(s.colour, dtype=np.uint8)
    return out
