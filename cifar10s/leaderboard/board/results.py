"""Reading leaderboard result files that anyone may have written: check every field, skip what fails.

Result files arrive in pull requests, so the board treats them as untrusted input. Each file is
read once and strictly (:func:`.result_file.read_result`: duplicate keys, NaN and huge numbers
refused), typed by the schema (:mod:`.result_schema`), each value the board shows is checked in
depth (:func:`entry_of`: strings cleaned of control characters, line breaks and lone surrogates,
accuracies finite fractions in [0, 1], summaries agreeing with their per-seed values), and its
signature verified against the trusted keys (:mod:`.signing`). What passes becomes a
:class:`CheckedResult` (the typed record, its row, its signer, its file name beside it), which
every renderer takes; any file or record that fails is skipped with a note naming it and the
reason, so one broken file never takes the board down.

It is one module (about 430 lines) because the checks and the row they build go together: each
check sits beside the field of the row it guards.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .result_file import (
    MAX_FILE_BYTES,
    MalformedResult,
    ResultRecord,
    data_caveats,
    data_source,
    kind_of,
    read_result,
    sandbox_label,
    typed_record,
)
from .result_schema import AccuracySummary, to_json
from .signing import SIGNATURE_FIELD, TrustedKeys, verify_record

__all__ = [
    "MAX_FILE_BYTES",
    "CheckedResult",
    "Entry",
    "MalformedResult",
    "check_records",
    "checked_entries",
    "clean_text",
    "http_url",
    "load_results",
    "parse_result",
]

_MAX_TEXT = 200  # names, authors, model/method/preset names
_MAX_URL = 2000
_MAX_LIST = 100  # authors, seeds, per-seed values, preset_diff entries
_MAX_DIFF_VALUE = 60  # characters of a preset_diff value shown


@dataclass(frozen=True)
class Entry:
    """One table row, built only from checked fields (or from the paper's tables)."""

    source: str  # "reproduced" (scored by this harness) or "reported" (the paper)
    name: str
    authors: tuple[str, ...]
    links: tuple[tuple[str, str], ...]  # (label, http(s) URL)
    model: str  # as displayed
    model_key: str | None  # canonical registry name for paper look-ups; None for custom code
    method: str
    defense: str  # "" when none
    variant: str
    train_set: str  # table key: the paper's name of the training set, else the variant
    paper_train_set: str | None
    preset: str
    seeds: int | None
    final: float | None  # fraction in [0, 1]
    final_std: float | None
    best: float | None
    diff_pp: float | None  # final - paper, percentage points (exact model match only)
    harness: str
    date: str
    notes: tuple[str, ...]
    comparable: bool
    file: str
    sandbox: str | None = None  # the sandbox it was scored in; None: none (shown apart, never ranked)
    signer: str | None = None  # id of the trusted key that signed it; None for the paper's rows
    data_source: str = ""  # the CIFAR-10 copy trained on: "official archive", "full-size copy", "subset"...
    data_sha256: str | None = None  # sha256 of the training images (before any defense): which build it was


@dataclass(frozen=True)
class CheckedResult:
    """A result file as the board uses it, checked once: the typed record, its row, who signed it,
    and the name of the file it came from (kept beside the record, never inside it)."""

    file: str  # display name of the file (cleaned)
    record: ResultRecord
    entry: Entry
    signer: str  # id of the trusted key whose signature verified
    signature: str  # the signature itself: two files with the same one hold the same signed result


# ------------------------------------------------------------------------------------------------
# checking result records


def clean_text(text: str) -> str:
    """Text safe to write anywhere: no control/format characters, line breaks or lone surrogates."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text).strip()


def _text(value: Any, where: str, *, optional: bool = False, limit: int = _MAX_TEXT,
          empty_ok: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise MalformedResult(f"{where} must be a string, got {_kind(value)}")
    if len(value) > limit:
        raise MalformedResult(f"{where} is {len(value)} characters long (at most {limit})")
    out = clean_text(value)
    if not out and not empty_ok:
        raise MalformedResult(f"{where} is empty")
    return out


_kind = kind_of


def _dict(value: Any, where: str, *, optional: bool = False) -> dict[str, Any]:
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise MalformedResult(f"{where} must be an object, got {_kind(value)}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedResult(f"{where} must be a number, got {_kind(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise MalformedResult(f"{where} is too large") from None
    if not math.isfinite(out):
        raise MalformedResult(f"{where} is {value}, not a finite number")
    return out


def _fraction(value: Any, where: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if value is None:
        raise MalformedResult(f"{where} is missing or null")
    out = _number(value, where)
    if not 0.0 <= out <= 1.0:
        raise MalformedResult(f"{where} = {out!r} is outside [0, 1] (accuracies are fractions)")
    return out


def _int(value: Any, where: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedResult(f"{where} must be an integer, got {_kind(value)}")
    if abs(value) > 2**63:
        raise MalformedResult(f"{where} is too large")
    return value


def _summary(block: Any, where: str, *, required: bool) -> tuple[float | None, float | None, int | None]:
    """(mean, std, n) of a summary block, checked against its per-seed values when they are given."""
    if block is None and not required:
        return None, None, None
    block = _dict(block, where)
    mean = _fraction(block.get("mean"), f"{where}.mean", optional=not required)
    std = _fraction(block.get("std"), f"{where}.std", optional=True)
    n = _int(block.get("n"), f"{where}.n", optional=True)
    if n is not None and n < 0:
        raise MalformedResult(f"{where}.n is negative")
    values = block.get("values")
    if values is not None:
        if not isinstance(values, list) or len(values) > _MAX_LIST:
            raise MalformedResult(f"{where}.values must be a list of at most {_MAX_LIST} accuracies")
        finite = [_fraction(v, f"{where}.values[{i}]", optional=True) for i, v in enumerate(values)]
        got = [v for v in finite if v is not None]
        if n is not None and n != len(got):
            raise MalformedResult(f"{where}.n = {n} but {len(got)} values are given")
        if mean is not None and (not got or abs(mean - sum(got) / len(got)) > 1e-9):
            raise MalformedResult(f"{where}.mean does not match the mean of {where}.values")
    return mean, std, n


def http_url(value: Any, where: str) -> str | None:
    """An http(s) URL that can be linked as is, or None (anything else is shown as text nowhere)."""
    url = _text(value, where, optional=True, limit=_MAX_URL)
    if not url or not re.fullmatch(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'*+,;=%()-]+", url):
        return None
    return url.replace("(", "%28").replace(")", "%29")


def _link_label(url: str) -> str:
    host = re.sub(r"^https?://(www\.)?", "", url).split("/", 1)[0].lower()
    if host in ("github.com", "gitlab.com", "bitbucket.org", "huggingface.co", "codeberg.org"):
        return "code"
    if host in ("arxiv.org", "openreview.net", "doi.org", "proceedings.mlr.press", "papers.nips.cc",
                "proceedings.neurips.cc", "openaccess.thecvf.com"):
        return "paper"
    return "link"


def _json_short(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = "?"
    text = clean_text(text)
    return text if len(text) <= _MAX_DIFF_VALUE else text[: _MAX_DIFF_VALUE - 1] + "…"


def _preset_notes(diff: dict[str, Any]) -> list[str]:
    if len(diff) > _MAX_LIST:
        raise MalformedResult(f"preset_diff has {len(diff)} entries (at most {_MAX_LIST})")
    parts = []
    for key in sorted(diff, key=str):
        name = _text(key, "a preset_diff key")
        item = _dict(diff[key], f"preset_diff.{name}")
        parts.append(f"{name}={_json_short(item.get('used'))} (paper {_json_short(item.get('paper'))})")
    return ["settings differ from the paper's: " + ", ".join(parts)] if parts else []


def parse_result(data: Any, file: str = "") -> Entry:
    """Check a result record (as written by ``score_submission``) and turn it into a table row.

    Raises :class:`MalformedResult` naming the first field that is missing, of the wrong type,
    not finite, out of range or too long. Unknown fields are ignored.
    """
    return entry_of(typed_record(data), file)


def _summary_of(block: AccuracySummary | None, where: str, *,
                required: bool) -> tuple[float | None, float | None, int | None]:
    return _summary(None if block is None else to_json(block), where, required=required)


def entry_of(record: ResultRecord, file: str = "") -> Entry:
    """The table row of a typed record (see :func:`parse_result`)."""
    from ...paper import canonical_model, lookup

    sub = _dict(record.submission, "submission")
    name = _text(sub.get("name"), "submission.name", empty_ok=False)
    authors_raw = sub.get("authors", [])
    if not isinstance(authors_raw, list) or len(authors_raw) > _MAX_LIST:
        raise MalformedResult(f"submission.authors must be a list of at most {_MAX_LIST} names")
    authors = tuple(_text(a, f"submission.authors[{i}]") for i, a in enumerate(authors_raw))
    links: list[tuple[str, str]] = []
    for key in ("paper", "code", "link"):  # "paper"/"code": separate links where a record has them
        url = http_url(sub.get(key), f"submission.{key}")
        if url and url not in (u for _, u in links):
            links.append((key if key != "link" else _link_label(url), url))
    model = _text(sub.get("model"), "submission.model", optional=True)
    entry_file = _text(sub.get("entry"), "submission.entry", optional=True)
    method = _text(sub.get("method"), "submission.method", empty_ok=False)
    defense = _text(sub.get("defense"), "submission.defense", optional=True) or ""
    kwargs = _dict(sub.get("defense_kwargs"), "submission.defense_kwargs", optional=True)
    if defense and kwargs:
        defense += " (" + ", ".join(f"{_text(k, 'a defense_kwargs key')}={_json_short(v)}"
                                    for k, v in sorted(kwargs.items(), key=lambda kv: str(kv[0]))) + ")"

    ds = record.dataset
    variant = _text(ds.variant, "dataset.variant", empty_ok=False)
    paper_set = _text(ds.paper_train_set, "dataset.paper_train_set", optional=True) or None
    for what, value in (("num_train", ds.num_train), ("num_test", ds.num_test)):
        _int(value, f"dataset.{what}", optional=True)
    kind = _text(ds.source_kind, "dataset.source_kind", optional=True, limit=40)
    for split in ("train", "test"):
        fp = getattr(ds.source_content_fingerprint, split, None)
        if fp is not None and not re.fullmatch(r"[0-9a-f]{64}", fp):
            raise MalformedResult(f"dataset.source_content_fingerprint.{split} must be a sha256 hex digest")
    checked_ds = {"official_cifar10": ds.official_cifar10, "num_train": ds.num_train or "?",
                  "num_test": ds.num_test or "?", "source_kind": kind,
                  "source_content_fingerprint": to_json(ds.source_content_fingerprint),
                  "recipe": _text(ds.recipe, "dataset.recipe", optional=True)}
    data_notes = [f"training data: {c}" for c in data_caveats(checked_ds)]
    test_kind = getattr(record.test_set, "source_kind", None)
    if test_kind == "subset":
        data_notes.append(f"test set: a subset of CIFAR-10's test set ({record.test_set.num_test or '?'} images)")
    source_label, source_note = data_source(checked_ds)

    summary = record.summary
    final, final_std, n = _summary_of(summary.final_test_acc, "summary.final_test_acc", required=True)
    best, _, _ = _summary_of(summary.best_test_acc, "summary.best_test_acc", required=False)

    preset = _text(record.preset, "preset", empty_ok=False)
    integrity_notes = _integrity_notes(record.integrity)
    notes = (_preset_notes(_dict(record.preset_diff, "preset_diff", optional=True)) + data_notes
             + ([source_note] if source_note else []) + integrity_notes)
    seeds_raw = record.seeds
    if seeds_raw is not None and len(seeds_raw) > _MAX_LIST:
        raise MalformedResult(f"seeds must be a list of at most {_MAX_LIST} integers")
    seeds = len([_int(s, f"seeds[{i}]") for i, s in enumerate(seeds_raw)]) if seeds_raw is not None else n

    code = _dict(record.code, "code", optional=True)
    harness = _text(code.get("cifar10s"), "code.cifar10s", optional=True, limit=40) or "?"
    commit = _text(code.get("git_commit"), "code.git_commit", optional=True, limit=80) or ""
    if re.fullmatch(r"[0-9a-f]{7,64}", commit):
        harness += f"@{commit[:8]}" + ("+dirty" if code.get("git_dirty") is True else "")
    date = (_text(record.created_utc, "created_utc", optional=True, limit=40) or "")[:10]

    model_key = canonical_model(model) if model else None
    diff_pp = None
    # an unpinned test split is expected of a full-size copy (the pins are the official arrays'):
    # footnoted, and comparable on the same terms as its training set (docs/leaderboard.md)
    full_copy_test = test_kind in ("full-copy", "official-content") and kind in ("full-copy", "official-content")
    disqualifying = [n for n in integrity_notes if not (full_copy_test and n.startswith("test split: "))]
    comparable = preset == "paper" and not data_notes and not disqualifying
    if model_key and paper_set and comparable:  # a difference from the paper only where it means one
        paper = [r for r in lookup(model_key, method, paper_set) if r.test_acc is not None]
        diff_pp = round(100.0 * final - paper[0].test_acc, 2) if paper and final is not None else None
    return Entry(
        source="reproduced", name=name or "?", authors=tuple(a for a in authors if a), links=tuple(links),
        model=model or f"custom ({entry_file or 'code'})", model_key=model_key, method=method or "?",
        defense=defense, variant=variant or "?", train_set=paper_set or variant or "?", paper_train_set=paper_set,
        preset=preset or "?", seeds=seeds, final=final, final_std=final_std, best=best, diff_pp=diff_pp,
        harness=harness, date=date, notes=tuple(notes), comparable=comparable, file=file,
        sandbox=sandbox_label(to_json({"sandbox": record.sandbox})), data_source=source_label,
        data_sha256=ds.train_images_sha256 if re.fullmatch(r"[0-9a-f]{64}", ds.train_images_sha256 or "") else None,
    )


def _integrity_notes(raw: Any) -> list[str]:
    """The scorer's integrity block as footnotes: a flagged flip gap, an unpinned test split.

    Results written before the block existed have none; they get no note.
    """
    if raw is None:
        return []
    block = _dict(raw, "integrity")
    notes = []
    if block.get("suspicious") is True:
        gap = block.get("flip_gap")
        shown = f"{100 * gap:+.1f} points" if _small_number(gap) else "a large gap"
        notes.append(f"FLAGGED: accuracy on horizontally flipped test images differs by {shown} from the "
                     "accuracy on the test images (trained networks differ by a point or two): possibly "
                     "memorised test labels, review the submission")
    caveats = block.get("caveats") or []
    if not isinstance(caveats, list) or len(caveats) > _MAX_LIST:
        raise MalformedResult("integrity.caveats must be a short list of strings")
    notes += [f"test split: {_text(c, 'integrity.caveats[]', limit=300)}" for c in caveats]
    return notes


def _small_number(value: Any) -> bool:
    """A finite number of at most 1000 in size (an integer of 400 digits overflows ``float``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= 1000 if isinstance(value, int) else math.isfinite(value) and abs(value) <= 1000


def _display_name(path: Path) -> str:
    return clean_text(os.fsencode(path.name).decode("utf-8", "replace"))


def _signature_of(data: Any) -> str:
    block = data.get(SIGNATURE_FIELD) if isinstance(data, dict) else None
    sig = block.get("signature") if isinstance(block, dict) else None
    return sig if isinstance(sig, str) else ""


def check_records(records: Sequence[tuple[str, Any]], trusted: TrustedKeys | None = None,
                  skipped: Iterable[str] = ()) -> tuple[list[CheckedResult], list[str]]:
    """``(file name, record)`` pairs checked once into :class:`CheckedResult`s: well-formed
    (:func:`parse_result`) and signed by a ``trusted`` key.

    Every other record joins the notes (``skipped`` first) with the reason: malformed, unsigned,
    signed by a key that is not trusted, or changed after signing. Without ``trusted`` keys no
    record verifies. A record with the same signature as one already checked (a byte-identical
    copy of a file) is the same signed result: it is kept once, with a note naming both files.
    """
    trusted = trusted if trusted is not None else TrustedKeys({})
    checked: list[CheckedResult] = []
    notes = [clean_text(str(s))[:1000] for s in skipped]
    first_file: dict[str, str] = {}
    for file, data in records:
        file = clean_text(file)[:_MAX_TEXT]
        try:
            record = typed_record(data)
            entry = entry_of(record, file)
        except MalformedResult as exc:
            notes.append(f"{file}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one record never stops the board
            notes.append(f"{file}: could not be checked ({type(exc).__name__}: {clean_text(str(exc))[:200]})")
            continue
        verified = verify_record(data, trusted)
        if not verified.ok or verified.key_id is None:
            notes.append(f"{file}: {verified.reason}")
            continue
        signature = _signature_of(data)
        if signature in first_file:
            notes.append(f"{file}: the same signed result as {first_file[signature]} (a copy; shown once)")
            continue
        first_file[signature] = file
        checked.append(CheckedResult(file=file, record=record, entry=dataclasses.replace(entry, signer=verified.key_id),
                                     signer=verified.key_id, signature=signature))
    return checked, notes


def load_results(folder: str | Path, trusted: TrustedKeys | None = None) -> tuple[list[CheckedResult], list[str]]:
    """Every result JSON directly inside ``folder``, read once and checked once
    (:func:`check_records`), and a ``"file: why"`` note per file left out.

    A file is skipped, never fatal, when it cannot be read, is refused by
    :func:`.result_file.read_result` (not UTF-8 JSON, duplicate keys, NaN, larger than
    :data:`MAX_FILE_BYTES`, ...), fails :func:`parse_result` or is not signed by a ``trusted``
    key. The file name travels beside the record, never inside it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"results folder {folder} does not exist")
    read, skipped = [], []
    for path in sorted(folder.glob("*.json")):
        shown = _display_name(path)
        try:
            read.append((shown, read_result(path)))
        except MalformedResult as exc:
            skipped.append(f"{shown}: {exc}")
        except OSError as exc:
            skipped.append(f"{shown}: unreadable ({exc.strerror or type(exc).__name__})")
        except Exception as exc:  # noqa: BLE001 - one file never stops the board, whatever is wrong with it
            skipped.append(f"{shown}: could not be checked ({type(exc).__name__}: {clean_text(str(exc))[:200]})")
    return check_records(read, trusted, skipped)


def checked_entries(results: Sequence[Any], skipped: Iterable[str] = (),
                    trusted: TrustedKeys | None = None) -> tuple[list[Entry], list[str]]:
    """The rows of in-memory records (see :func:`check_records`; record *i* is named ``result #i``)."""
    checked, notes = check_records([(f"result #{i + 1}", r) for i, r in enumerate(results)], trusted, skipped)
    return [c.entry for c in checked], notes
