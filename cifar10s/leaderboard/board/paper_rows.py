"""The paper's rows on the board: its printed numbers as *reported* rows beside matching results.

Only clean-test accuracies (Tables 2-5) are candidates; Table 1 measures training sets. The
numbers come from the package's transcription of the paper (:mod:`cifar10s.paper`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .results import Entry, http_url

__all__ = ["paper_entries", "tables_text"]

#: the authors' code, linked on the paper's rows when the baselines' source record names none
_AUTHORS_CODE = "https://github.com/cychomatica/One-Pixel-Shotcut"
_ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}(v\d+)?")


def _paper_links(source: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The paper (its ``url``, else its arXiv id) and the authors' code, as (label, URL) links."""
    def url(key: str) -> str | None:
        value = source.get(key)
        return http_url(value, key) if isinstance(value, str) else None

    arxiv = source.get("arxiv")
    paper = url("url") or url("arxiv") or (
        f"https://arxiv.org/abs/{arxiv}" if isinstance(arxiv, str) and _ARXIV_ID.fullmatch(arxiv) else None)
    code = url("code") or _AUTHORS_CODE
    return tuple((label, u) for label, u in (("paper", paper), ("code", code)) if u)


def tables_text(names: Sequence[str]) -> str:
    """``["table2", "table4", "table5"]`` -> ``"Tables 2, 4 and 5"``."""
    nums = [n.replace("table", "") for n in names]
    if len(nums) == 1:
        return f"Table {nums[0]}"
    return f"Tables {', '.join(nums[:-1])} and {nums[-1]}"


def paper_entries(reproduced: Sequence[Entry], comparable: bool) -> list[Entry]:
    """The paper's rows whose (model, method, training set) matches one of ``reproduced``.

    Only clean-test accuracies (Tables 2-5) are candidates: Table 1 measures training sets.
    Table 5's k-pixel rows (training set ``ops-kK``) only match a result trained on that many
    pixels. A setting printed in several tables with the same number (ResNet-18, standard, OPS:
    15.56 in Tables 2, 4 and 5) is one row naming every table it is printed in.
    """
    from ...paper import load_baselines, rows

    keys = {(e.model_key, e.method.lower(), e.paper_train_set) for e in reproduced
            if e.model_key and e.paper_train_set}
    if not keys:
        return []
    links = _paper_links(load_baselines().get("source") or {})
    printed: dict[tuple[str, str, str, float], list[str]] = {}  # paper order: first printed first
    for r in rows():
        key = (r.model, r.method, r.train_set)
        if r.test_acc is None or key not in keys:
            continue
        tables = printed.setdefault((*key, r.test_acc), [])
        if r.table not in tables:
            tables.append(r.table)
    return [
        Entry(
            source="reported", name=f"Wu et al., One-Pixel Shortcut, {tables_text(tables)}", authors=(),
            links=links, model=model, model_key=model, method=method, defense="", variant=train_set,
            train_set=train_set, paper_train_set=train_set, preset="paper", seeds=None, final=acc / 100.0,
            final_std=None, best=None, diff_pp=None, harness="–", date="2023", notes=(), comparable=comparable,
            file="",
        )
        for (model, method, train_set, acc), tables in printed.items()
    ]
