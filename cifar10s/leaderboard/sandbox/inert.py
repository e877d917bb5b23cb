"""Making text that a child process produced safe to print and to store.

A submission controls every byte its child writes: error messages, problem lists, log output,
strings in its report. Printed raw, an escape sequence can move the cursor, rewrite earlier
lines, retitle the window or hide text on the scorer's terminal; stored raw, it does the same to
whoever reads the file later. :func:`inert_text` removes terminal escape sequences and every
control character except newline and tab (C0, DEL, C1), and is applied wherever child text
crosses into the scorer's output or a result.
"""

from __future__ import annotations

import re

__all__ = ["inert_text"]

# ESC [ ... final (CSI), ESC ] ... BEL or ESC \ (OSC), ESC P/X/^/_ ... ESC \ (DCS, SOS, PM, APC),
# and two-character ESC sequences; an unterminated string sequence runs to the end of the text
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?"
                     r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
                     r"|\x1b[ -~]?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_KEEP_CR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def inert_text(text: str, *, keep_cr: bool = False) -> str:
    """``text`` without escape sequences and control characters (newline and tab are kept).

    ``keep_cr`` also keeps carriage returns, for relaying a progress bar line by line; nowhere
    that text is stored.
    """
    text = _ESCAPE.sub("", text)
    return (_CONTROL_KEEP_CR if keep_cr else _CONTROL).sub("", text)
