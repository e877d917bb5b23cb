"""Shortcut audit of a training set: does it carry a pixel, patch, moving patch, class-wise pattern,
second-order or sample-wise noise shortcut, and which images carry it? ``audit(images, labels)``
returns the verdict with its evidence and a suspicion score per image.

Modules (numpy and Pillow only; torch only for the optional network baseline): :mod:`.pixel` and
:mod:`.isolated` (fixed pixels, also on a share of a class), :mod:`.pattern` (class means),
:mod:`.windows` (recurring windows, wherever they sit), :mod:`.secondorder` (local correlations),
:mod:`.learnability` and :mod:`.probes` (linear probes), :mod:`.network` (the optional network
baseline), :mod:`.verdict` and :mod:`.findings` (thresholds from :mod:`.thresholds` applied),
:mod:`.scores` (per-image scores, AUROC), :mod:`.report`, :mod:`.picture` (the PNG),
:mod:`.training_set` (inputs checked), :mod:`.synthetic` (planted shortcuts and clean
transformations for calibration and tests).
"""

from __future__ import annotations

from .report import AuditReport, Finding
from .verdict import audit

__all__ = ["AuditReport", "Finding", "audit"]
