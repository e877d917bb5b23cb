"""Shortcut audit of a training set: does it carry a pixel, patch, class-wise pattern or sample-wise
noise shortcut? ``audit(images, labels)`` returns the verdict with its evidence.

Modules (numpy and Pillow only, no torch): :mod:`.pixel`, :mod:`.pattern` (seconds on 50,000
images), :mod:`.learnability` and :mod:`.probes` (linear probes), :mod:`.verdict` (thresholds from :mod:`.thresholds`
applied, the report), :mod:`.picture` (the PNG), :mod:`.training_set` (inputs checked),
:mod:`.synthetic` (planted shortcuts for calibration and tests).
"""

from __future__ import annotations

from .report import AuditReport, Finding
from .verdict import audit

__all__ = ["AuditReport", "Finding", "audit"]
