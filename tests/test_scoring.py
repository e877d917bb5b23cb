"""Scoring: what submission code can reach (run in child processes), and resuming an interrupted run.

Training runs use the ``cpu-smoke`` preset (shortened further where the check allows) and LeNet-5
or a tiny CNN on the shared real CIFAR-10 subset (``built_root``: ``clean`` + ``ops-k1``).
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from leaderboard_kit import META, TINY_NET, clean_test_split, image_hash, sandbox_with, write_submission
from safetensors.torch import load_file

from cifar10s.leaderboard import ScoringInterrupted, score_submission, validate_submission
from cifar10s.store import TRAIN_LABELS, clean_folder, load_array, verify_folder

TIMING_FIELDS = {"train_time", "eval_time", "images_per_sec", "elapsed"}


# Hooks and forward passes that walk everything they can reach and write what they found to LOG, one
# file per process (the inspecting, training and evaluating children each import this module).
HOSTILE = '''
import hashlib, json, os, sys, types
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOG = {log!r}
TOKEN = os.urandom(8).hex()  # PIDs repeat across sandboxes (each child is PID 2 of its own)
PKG = str(Path(__import__("cifar10s").__file__).resolve().parent)
FOUND = {{"ARGS": [], "STACK": [], "ARGS_IMAGES": [], "STACK_IMAGES": [], "STRINGS": [],
          "CALLS": {{"forward_eval": 0, "forward_train": 0, "preprocess": 0, "train_step": 0, "make_optimizer": 0}}}}
SEEN = set()

def save():
    with open(os.path.join(LOG, f"{{os.getpid()}}-{{TOKEN}}.json"), "w") as f:
        json.dump(FOUND, f)

def record(a, where):
    """Fingerprint an array (labels also as int64); per-image hashes of image arrays."""
    a = np.ascontiguousarray(a)
    digest = hashlib.sha256(a.tobytes()).hexdigest()
    if (where, a.shape, digest) in SEEN:
        return
    SEEN.add((where, a.shape, digest))
    FOUND[where].append([list(a.shape), digest])
    if a.ndim == 1 and a.dtype.kind in "iu":
        b = np.ascontiguousarray(a.astype(np.int64))
        FOUND[where].append([list(b.shape), hashlib.sha256(b.tobytes()).hexdigest()])
    if a.dtype == np.uint8 and a.ndim == 4 and a.shape[1:] in ((32, 32, 3), (3, 32, 32)):
        imgs = a if a.shape[-1] == 3 else a.transpose(0, 2, 3, 1)
        FOUND[where + "_IMAGES"].append([hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest()[:16]
                                         for im in imgs])

def walk(obj, where, strings=None, depth=0, seen=None):
    seen = set() if seen is None else seen
    if depth > 5 or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        if obj.numel():
            record(obj.detach().cpu().numpy(), where)
        return
    if isinstance(obj, np.ndarray):
        record(obj, where)
        return
    if isinstance(obj, (str, Path)):
        if strings is not None:
            strings.append(str(obj))
        return
    if isinstance(obj, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, int, float,
                        bool, bytes, type(None))):
        return
    if isinstance(obj, dict):
        for k, v in list(obj.items()):
            walk(k, where, strings, depth + 1, seen)
            walk(v, where, strings, depth + 1, seen)
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for v in list(obj):
            walk(v, where, strings, depth + 1, seen)
        return
    if isinstance(obj, torch.optim.Optimizer):
        walk(obj.state_dict(), where, strings, depth + 1, seen)
        walk(obj.param_groups, where, strings, depth + 1, seen)
    for name in dir(obj) if not isinstance(obj, nn.Module) else ():
        if "test" in name.lower() or "label" in name.lower():
            try:
                walk(getattr(obj, name), where, strings, depth + 1, seen)
            except Exception:
                pass
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        walk(d, where, strings, depth + 1, seen)

def walk_stack():
    f = sys._getframe(1)
    while f is not None:
        if f.f_code.co_filename.startswith(PKG):
            walk(dict(f.f_locals), "STACK")
            for v in list(f.f_globals.values()):
                walk(v, "STACK", depth=4)
        f = f.f_back

class Hostile(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, num_classes)
    def forward(self, x):
        key = "forward_train" if self.training else "forward_eval"
        FOUND["CALLS"][key] += 1
        if FOUND["CALLS"][key] <= 3:
            walk_stack()
            walk(x, "ARGS" if self.training else "STACK")
            save()
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

def build_model(num_classes):
    return Hostile(num_classes)

def preprocess(images, labels):
    FOUND["CALLS"]["preprocess"] += 1
    walk((images, labels), "ARGS", FOUND["STRINGS"])
    walk_stack()
    save()
    return images
'''

HOSTILE_CUSTOM = HOSTILE + '''
def make_optimizer(model, config):
    FOUND["CALLS"]["make_optimizer"] += 1
    walk((model, config), "ARGS", FOUND["STRINGS"])
    save()
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)

def train_step(model, x, y, optimizer, *, epoch, step, generator):
    FOUND["CALLS"]["train_step"] += 1
    if FOUND["CALLS"]["train_step"] <= 3:
        walk((model, x, y, optimizer, generator), "ARGS", FOUND["STRINGS"])
        walk_stack()
        save()
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()
'''


def _fingerprints(a: np.ndarray) -> set:
    out = set()
    for b in (np.ascontiguousarray(a), np.ascontiguousarray(a.astype(np.int64))):
        out.add((tuple(b.shape), hashlib.sha256(b.tobytes()).hexdigest()))
    return out


def _merge(logs: Path) -> dict:
    found: dict = {"ARGS": set(), "STACK": set(), "ARGS_IMAGES": [], "STACK_IMAGES": [], "STRINGS": [], "CALLS": {}}
    for path in logs.glob("*.json"):
        one = json.loads(path.read_text())
        for where in ("ARGS", "STACK"):
            found[where] |= {(tuple(shape), digest) for shape, digest in one[where]}
            found[where + "_IMAGES"] += one[where + "_IMAGES"]
        found["STRINGS"] += one["STRINGS"]
        for k, v in one["CALLS"].items():
            found["CALLS"][k] = found["CALLS"].get(k, 0) + v
    return found


@pytest.mark.parametrize("custom_loop", [False, True], ids=["trainer", "custom-loop"])
def test_submission_cannot_reach_test_labels(tmp_path, built_root, custom_loop, one_thread):
    from cifar10s.training.evaluation import subset_indices

    logs = tmp_path / "logs"
    logs.mkdir()
    source = (HOSTILE_CUSTOM if custom_loop else HOSTILE).format(log=str(logs))
    folder = write_submission(tmp_path / "hostile", {**META, "entry": "hostile.py"}, {"hostile.py": source})
    result = score_submission(folder, built_root, variant="ops", preset="cpu-smoke", seeds=[0], device="cpu",
                              out=tmp_path / "out", overrides={"epochs": 1, "train_subset": 256}, log=None,
                              sandbox=sandbox_with(logs))
    assert result["submission"]["custom_loop"] is custom_loop
    found = _merge(logs)
    calls = found["CALLS"]
    assert calls["forward_eval"] > 0 and calls["preprocess"] == 1
    if custom_loop:
        assert calls["train_step"] > 0 and calls["make_optimizer"] == 1

    # only now, with scoring finished, does the test itself look at the test split
    test_images, test_labels = clean_test_split(built_root)
    idx = subset_indices(len(test_labels), 500, "eval").numpy()
    label_of = {image_hash(im): int(lab) for im, lab in zip(test_images, test_labels)}
    label_of.update({image_hash(im[:, ::-1]): int(lab) for im, lab in zip(test_images, test_labels)})
    forbidden = _fingerprints(test_labels) | _fingerprints(test_labels[idx])
    for hashes in found["ARGS_IMAGES"] + found["STACK_IMAGES"]:  # labels lined up with any test images seen
        if hashes and all(h in label_of for h in hashes):
            forbidden |= _fingerprints(np.array([label_of[h] for h in hashes], dtype=np.int64))
    cdir = clean_folder(built_root)
    train_labels = np.asarray(load_array(cdir, TRAIN_LABELS, verify_folder(cdir), mmap=False))

    # the walkers work: they found the training labels handed to preprocess, and the test images in the
    # evaluating child's frames (the model must see those to be scored)
    assert _fingerprints(train_labels) & found["ARGS"]
    test_hashes = {image_hash(im) for im in test_images}
    assert any(test_hashes <= set(hashes) for hashes in found["STACK_IMAGES"])
    # ... but no test labels anywhere, in any order that matches images the submission saw
    assert not forbidden & found["ARGS"]
    assert not forbidden & found["STACK"]
    # the objects handed to hooks hold no test images and no path to test data or the data root
    assert not test_hashes & {h for hashes in found["ARGS_IMAGES"] for h in hashes}
    root = str(Path(built_root).resolve())
    assert not [s for s in found["STRINGS"] if "test" in s.lower() or "clean" in s or root in s]


def _strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


@pytest.mark.parametrize("kind", ["registered", "custom-loop"])
def test_interrupted_scoring_resumes_to_the_same_result(tmp_path, built_root, kind, one_thread):
    if kind == "registered":
        folder = write_submission(tmp_path / "sub", {**META, "model": "lenet5", "method": "mixup"})
    else:
        step = TINY_NET + textwrap.dedent("""
            import torch.nn.functional as F
            def train_step(model, x, y, optimizer, *, epoch, step, generator):
                noise = torch.randn(x.shape, generator=generator) * 0.01
                loss = F.cross_entropy(model(x + noise), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                return loss
        """)
        folder = write_submission(tmp_path / "sub", {**META, "entry": "m.py"}, {"m.py": step})
    sub = validate_submission(folder)  # inspected once, in a child; the runs below reuse the report
    kw = dict(variant="ops", preset="cpu-smoke", seeds=[0], device="cpu", log=None,
              overrides={"train_subset": 512})
    a, b = tmp_path / "a", tmp_path / "b"
    with pytest.raises(ScoringInterrupted, match="run the same command again"):
        score_submission(sub, built_root, out=a, stop_after_epoch=1, **kw)
    assert not list(a.glob("*.json"))  # nothing published for an unfinished run
    resumed = score_submission(sub, built_root, out=a, **kw)
    fresh = score_submission(sub, built_root, out=b, **kw)
    assert resumed["per_seed"][0]["resumed_from_epoch"] == 1 and fresh["per_seed"][0]["resumed_from_epoch"] == 0
    for ra, rb in zip(resumed["per_seed"], fresh["per_seed"]):
        assert len(ra["records"]) == 2 and all(r["test_acc"] is not None for r in ra["records"])
        assert ra["final_test_acc"] == rb["final_test_acc"] and ra["flipped_test_acc"] == rb["flipped_test_acc"]
        assert ra["best_test_acc"] == rb["best_test_acc"] and ra["best_epoch"] == rb["best_epoch"]
        assert _strip(ra["records"]) == _strip(rb["records"])
        assert ra["weights_sha256"] == rb["weights_sha256"]
        # recorded relative to the result's folder: no path of the scoring machine in a result
        assert not Path(ra["workdir"]).is_absolute() and ra["workdir"].startswith(".work/")
        wa = load_file(a / ra["workdir"] / "model.safetensors")
        wb = load_file(b / rb["workdir"] / "model.safetensors")
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert resumed["summary"]["final_test_acc"] == fresh["summary"]["final_test_acc"]

    # a work folder refuses to resume a different submission
    meta = json.loads((folder / "submission.json").read_text())
    (folder / "submission.json").write_text(json.dumps({**meta, "description": "changed"}))
    with pytest.raises(ValueError, match="holds a scoring run of something else"):
        score_submission(folder, built_root, out=a, **kw)


def test_a_training_set_of_another_cifar10_copy_is_refused_before_anything_runs(tmp_path, built):
    """Train and test must come from one CIFAR-10 copy; the scorer relies on the dataset's one
    check (:func:`cifar10s.folder.require_same_source`) and stops before a child starts."""
    import shutil

    from cifar10s.store import MANIFEST, IntegrityError, variant_folder
    from cifar10s.variants import VariantSpec

    root = tmp_path / "root"
    shutil.copytree(built, root)
    manifest_path = variant_folder(root, VariantSpec("ops")) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["source"]["fingerprint"] = "0" * len(manifest["source"]["fingerprint"])
    manifest_path.write_text(json.dumps(manifest))
    sub = write_submission(tmp_path / "sub", {**META, "model": "lenet5", "method": "standard"})
    with pytest.raises(IntegrityError, match="different CIFAR-10 source"):
        score_submission(sub, root, variant="ops", preset="cpu-smoke", device="cpu", sandbox=False, log=None)
