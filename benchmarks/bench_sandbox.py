"""What the bubblewrap sandbox adds to each child process, beside the same child without it.

Two children, each run ``--repeats`` times in alternation with and without the sandbox in this
one process (so both see the same machine load): a trivial one (``python -I -B -c pass``) and
the inspect child of ``validate`` on a tiny entry-point submission (imports torch, builds the
model, runs a dummy batch). Prints the median time of each, the per-child overhead and the ratio.

    python benchmarks/bench_sandbox.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from cifar10s.leaderboard.sandbox.bwrap import detect
from cifar10s.leaderboard import load_submission, validate_submission

TINY = textwrap.dedent("""
    import torch
    from torch import nn

    def build_model(num_classes):
        return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(8, num_classes))
""")


def trivial(box, scratch: Path) -> float:
    """One child that does nothing; sandboxed, it pays what every child pays to start (the held
    user namespace of a root scorer included)."""
    argv = [sys.executable, "-I", "-B", "-c", "pass"]
    t0 = time.perf_counter()
    if box is None:
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, cwd=scratch)
    else:
        box.run(argv, scratch=scratch).check_returncode()
    return time.perf_counter() - t0


def inspect(box, sub) -> float:
    t0 = time.perf_counter()
    validate_submission(sub, sandbox=box if box is not None else False)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    t0 = time.perf_counter()
    box = detect()
    print(f"sandbox: bubblewrap {box.version}, namespaces {', '.join(box.namespaces())}, children as host uid "
          f"{box.child_uid}, cgroup {box.cgroups.version}; detect (one probe child) {time.perf_counter() - t0:.3f} s")
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        folder = Path(tmp) / "sub"
        folder.mkdir()
        (folder / "submission.json").write_text('{"name": "bench", "authors": ["b"], "link": "https://example.org", '
                                                '"entry": "m.py"}')
        (folder / "m.py").write_text(TINY)
        sub = load_submission(folder)
        scratch = Path(tmp) / "scratch"
        scratch.mkdir()
        rows = []
        for name, fn in (("trivial child (python -c pass)", lambda b: trivial(b, scratch)),
                         ("inspect child (validate: import torch, build, one batch)", lambda b: inspect(b, sub))):
            fn(None), fn(box)  # warm the page cache for both
            plain, boxed = [], []
            for _ in range(args.repeats):
                plain.append(fn(None))
                boxed.append(fn(box))
            rows.append((name, statistics.median(plain), statistics.median(boxed)))
    print(f"{'child':58s} {'plain s':>9s} {'sandboxed s':>12s} {'overhead s':>11s} {'ratio':>6s}")
    for name, a, b in rows:
        print(f"{name:58s} {a:9.3f} {b:12.3f} {b - a:+11.3f} {b / a:6.2f}")
    print(f"medians of {args.repeats} alternating runs each")


if __name__ == "__main__":
    main()
