"""A submission cannot earn a score it did not earn.

Each attack below is a small submission that, against a scorer running submission code in its
own process, reached the top of the board. Here each one is scored (``cpu-smoke``, one short
epoch, a tiny model) and must be refused or score what it earned. Models that do not find the
labels answer with all-zero logits, i.e. class 0, which is exactly 10% of the class-balanced test
split. Attacks report what they did to a log folder the test gives them, so a test can tell "the
attack ran and found nothing" from "the attack never ran".
"""

from __future__ import annotations

import importlib.util
import json
import os
import py_compile
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from leaderboard_kit import META, QUICK, TINY_NET, clean_test_split, image_hash, sandbox_with, write_submission

from cifar10s.cli.main import main as lb_main
from cifar10s.leaderboard import SubmissionError, load_submission, score_submission, validate_submission
from cifar10s.leaderboard.scoring.heldout import HeldOutTestSet, verify_test_split
from cifar10s.leaderboard.scoring.integrity import integrity_lines, integrity_record
from cifar10s.leaderboard.scoring.records import SeedResult
from cifar10s.leaderboard.sandbox.runner import PASSED_ENV, WorkerFailed, read_logits
from cifar10s.store import TEST_LABELS, IntegrityError, clean_folder, data_dir

CHANCE = 0.1  # class 0 on the class-balanced 2,000-image test split


# shared by the attacks: a model whose weights contribute nothing and whose logits come from guess(x)
GUESSER = '''
import hashlib, json, os, sys
import numpy as np
import torch
from torch import nn

LOG = {log!r}
TOKEN = os.urandom(8).hex()  # PIDs repeat across sandboxes (each child is PID 2 of its own)
STATE = {{"pid": os.getpid(), "eval_calls": 0, "eval_images": 0, "hits": 0, "table": 0}}
TABLE = {{}}

def log():
    with open(os.path.join(LOG, f"{{os.getpid()}}-{{TOKEN}}.json"), "w") as f:
        json.dump(STATE, f)

def key(img_hwc_u8):
    return hashlib.sha1(np.ascontiguousarray(img_hwc_u8).tobytes()).hexdigest()[:16]

def as_np(v):
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    return v if isinstance(v, np.ndarray) else None

def harvest(values):
    """Pair every image array with every label array of the same length: an image -> label table."""
    images, labels = [], []
    for v in values:
        a = as_np(v)
        if a is None:
            continue
        if a.dtype == np.uint8 and a.ndim == 4 and a.shape[1:] in ((32, 32, 3), (3, 32, 32)):
            images.append(a if a.shape[-1] == 3 else a.transpose(0, 2, 3, 1))
        elif a.ndim == 1 and a.dtype.kind in "iu" and len(a) >= 100:
            labels.append(a)
    for imgs in images:
        for labs in labels:
            if len(imgs) == len(labs):
                TABLE.update((key(im), int(l)) for im, l in zip(imgs, labs))
    STATE["table"] = len(TABLE)

def candidates(obj):
    """An object, its attributes, and what its label-reading methods return."""
    yield obj
    d = obj if isinstance(obj, dict) else getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        yield from list(d.values())
    for name in () if isinstance(obj, type) else label_names(type(obj)):
            try:
                fn = getattr(obj, name)
                yield fn() if callable(fn) else fn
            except Exception:
                pass

LABEL_NAMES = {{}}

def label_names(tp):
    if tp not in LABEL_NAMES:
        LABEL_NAMES[tp] = [n for n in list(getattr(tp, "__dict__", {{}})) if "label" in n.lower()]
    return LABEL_NAMES[tp]

def attack():
    pass  # each attack defines its own

class Guesser(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(3, num_classes)
        self.num_classes = num_classes
    def forward(self, x):
        out = self.fc(x.mean((2, 3))) * 0.0
        if self.training:
            return out
        if STATE["eval_calls"] == 0:
            attack()
        STATE["eval_calls"] += 1
        imgs = (x.detach() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        guess = torch.zeros_like(out)
        for i, im in enumerate(imgs):
            label = TABLE.get(key(im))
            if label is not None:
                guess[i, label] = 10.0
                STATE["hits"] += 1
        STATE["eval_images"] += len(imgs)
        log()
        return out + guess

def build_model(num_classes):
    return Guesser(num_classes)
'''

FRAME_WALKER = '''
def attack():
    """Walk up the stack to the scorer's frames and read whatever labels they hold."""
    values, f, frames = [], sys._getframe(1), 0
    while f is not None:
        frames += 1
        for v in list(f.f_locals.values()):
            values.extend(candidates(v))
        f = f.f_back
    STATE["frames"] = frames
    harvest(values)
'''

GC_WALKER = '''
import gc

def attack():
    """Search every live object of the process for test images and labels."""
    values, n = [], 0
    for obj in gc.get_objects():
        n += 1
        if isinstance(obj, (dict, list, tuple)) or hasattr(obj, "__dict__"):
            for v in candidates(obj) if not isinstance(obj, (list, tuple)) else list(obj):
                if isinstance(v, (np.ndarray, torch.Tensor)):
                    values.append(v)
    STATE["objects"] = n
    harvest(values)
'''

MONKEYPATCH = '''
import cifar10s.leaderboard.scoring.heldout as heldout
import cifar10s.leaderboard.scoring as scoring

heldout.HeldOutTestSet.accuracy = lambda self, logits, indices=None: 0.9731
scoring.score_submission.__globals__["integrity_record"] = lambda *a, **k: {{"suspicious": False}}
STATE["patched"] = True
log()
'''

TAMPERER = '''
from pathlib import Path
ROOT = Path({root!r})  # an attacker who found the data folder on disk

def attack_files():
    clean = ROOT / "cifar10s-v1" / "clean"
    path = clean / "test_labels.npy"
    np.save(path, np.zeros(2000, dtype=np.int64))
    manifest = json.loads((clean / "manifest.json").read_text())
    entry = manifest["files"]["test_labels.npy"]
    entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    entry["bytes"] = path.stat().st_size
    (clean / "manifest.json").write_text(json.dumps(manifest))
    STATE["tampered"] = True
    # what this process could have learned about the root by itself
    STATE["argv"], STATE["env"], STATE["cwd"], STATE["path"] = sys.argv, dict(os.environ), os.getcwd(), sys.path
    log()

attack_files()
'''


def attack_submission(tmp_path: Path, name: str, code: str, **fmt: str) -> tuple[Path, Path]:
    logs = tmp_path / f"{name}-logs"
    logs.mkdir()
    src = GUESSER.format(log=str(logs)) + code.format(**fmt)
    folder = write_submission(tmp_path / name, {**META, "name": name, "entry": "attack.py"}, {"attack.py": src})
    return folder, logs


def read_logs(logs: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(logs.glob("*.json"))]


def score_quick(folder: Path, root: Path, out: Path, variant: str = "ops", **kw):
    """Score in the sandbox, with the attack's log folder (beside the submission) writable."""
    kw.setdefault("sandbox", sandbox_with(*folder.parent.glob(f"{folder.name}-logs")))
    return score_submission(folder, root, variant=variant, preset="cpu-smoke", seeds=[0], device="cpu",
                            out=out, overrides=dict(QUICK), log=kw.pop("log", None), **kw)


# ------------------------------------------------------------------------------------------------
# the three in-process attacks score chance


@pytest.mark.parametrize("attack", ["frame-walker", "gc-walker", "monkeypatch"])
def test_process_attacks_score_what_they_earned(tmp_path, built_root, attack, one_thread):
    code = {"frame-walker": FRAME_WALKER, "gc-walker": GC_WALKER, "monkeypatch": MONKEYPATCH}[attack]
    folder, logs = attack_submission(tmp_path, attack, code)
    result = score_quick(folder, built_root, tmp_path / "out")
    (seed,) = result["per_seed"]
    assert seed["final_test_acc"] == CHANCE and seed["flipped_test_acc"] == CHANCE
    assert result["summary"]["final_test_acc"]["mean"] == CHANCE
    assert result["integrity"]["suspicious"] is False and result["integrity"]["flip_gap"] == 0.0
    assert json.loads(_written(tmp_path / "out").read_text())["summary"]["final_test_acc"]["mean"] == CHANCE

    states = read_logs(logs)
    evaluated = [s for s in states if s["eval_calls"]]
    # the attack ran where the model was evaluated (training child: per-epoch images; evaluation child:
    # the 2 x 2,000 test and flipped images) and no test image was found in its table
    assert {s["eval_images"] for s in evaluated} >= {2 * 2000}
    assert all(s["hits"] == 0 for s in evaluated if s["eval_images"] == 4000)
    if attack == "frame-walker":
        assert all(s["frames"] >= 3 for s in evaluated)
    elif attack == "gc-walker":
        assert all(s["objects"] > 1000 for s in evaluated)
    else:
        assert any(s.get("patched") for s in states)


def test_the_walkers_find_labels_that_are_there(tmp_path, built_root):
    """Positive control: in a process that holds the test labels, the same attack code finds them."""
    images, labels = clean_test_split(built_root)
    logs = tmp_path / "logs"
    logs.mkdir()
    path = tmp_path / "walker.py"
    path.write_text(GUESSER.format(log=str(logs)) + FRAME_WALKER)
    spec = importlib.util.spec_from_file_location("walker_control", path)
    walker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(walker)

    class OldScorer:  # what an in-process scorer held
        def __init__(self):
            self._images = images

        def _read_labels(self):
            return labels

    def accuracy_frame(scorer):  # noqa: ARG001 - the frame the walker climbs to
        walker.attack()

    accuracy_frame(OldScorer())
    assert walker.STATE["table"] == len({image_hash(im) for im in images})
    assert all(walker.TABLE[image_hash(im)] == lab for im, lab in zip(images[:50], labels[:50]))


# ------------------------------------------------------------------------------------------------
# tampering with the data folder is detected, and does not pay


def test_tampered_test_labels_are_detected_and_no_result_is_written(tmp_path, built_root, one_thread):
    """Without the sandbox (which hides the data root: tests/test_sandbox.py), a child that finds
    the data folder and rewrites the labels and their manifest is still caught by the pins."""
    from cifar10s.dataset import CIFAR10S

    root = tmp_path / "root"
    shutil.copytree(data_dir(built_root), data_dir(root))
    folder, logs = attack_submission(tmp_path, "tamperer", TAMPERER, root=str(root))
    out = tmp_path / "out"
    with pytest.raises(IntegrityError, match="changed while the submission was being scored"):
        score_quick(folder, root, out, sandbox=False)
    assert not list(out.glob("*.json"))
    states = read_logs(logs)
    assert any(s.get("tampered") for s in states)
    assert np.all(np.load(clean_folder(root) / TEST_LABELS) == 0)
    # nothing the child was given named the data root: not its argv, environment, folder or path
    resolved = str(root.resolve())
    for s in (s for s in states if s.get("tampered")):
        exposed = [*s["argv"], *s["env"].values(), s["cwd"], *s["path"]]
        assert not [v for v in exposed if resolved in v or str(root) in v]
        allowed = {*PASSED_ENV, "HOME", "TMPDIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}
        assert not {k for k, v in s["env"].items() if k not in allowed and os.environ.get(k) == v}  # none inherited

    # the manifest agrees with the rewritten labels, so the folder's own check passes ...
    assert len(CIFAR10S(root, train=False, verify=True)) == 2000
    # ... but the package's pin does not: an honest submission scored afterwards is refused before
    # any of its code runs (its import would leave a log)
    honest_logs = tmp_path / "honest-logs"
    honest_logs.mkdir()
    honest = write_submission(tmp_path / "honest", {**META, "entry": "m.py"},
                              {"m.py": TINY_NET + f"\nopen({str(honest_logs / 'ran')!r}, 'w').close()\n"})
    with pytest.raises(IntegrityError, match="differs from the values pinned"):
        score_quick(honest, root, out, sandbox=False)
    assert not list(out.glob("*.json")) and not (honest_logs / "ran").exists()


def test_test_split_verification_without_a_pin(tmp_path, tiny_archive):
    """Unpinned sources: re-derived from an archive with the published md5, else a caveat."""
    from cifar10s.release.builders import build_variant
    from cifar10s.sources.cifar10 import load_cifar10
    from cifar10s.variants import VariantSpec

    root = tmp_path / "root"
    build_variant(root, VariantSpec("clean"), cifar10=tiny_archive, progress=False)
    src = load_cifar10(tiny_archive)
    test = HeldOutTestSet(root)
    assert test.verification["method"] == "unverified" and "test split not pinned" in test.verification["caveat"]
    seed = SeedResult(seed=0, final_epoch_eval_acc=None, best_test_acc=None, best_epoch=None, final_train_acc=None,
                      num_train=1, param_count=1, train_time_s=0.0, resumed_from_epoch=None, device="cpu",
                      precision={}, records=[], workdir=None, weights_sha256="0" * 64,
                      final_test_acc=0.5, flipped_test_acc=0.49)
    record = integrity_record([seed], test.verification)
    assert record["caveats"] == [test.verification["caveat"]] and record["suspicious"] is False
    assert any(line.startswith("note: test split not pinned") for line in integrity_lines(record))

    shutil.copy(tiny_archive, root / "cifar-10-python.tar.gz")
    args = (root, src.fingerprint, src.test_images, src.test_labels)
    # the tiny archive's md5 are not the published ones: it is no better than the folder itself
    assert verify_test_split(*args)["method"] == "unverified"
    # with its md5 taken as the published ones, the split is re-derived and compared
    assert verify_test_split(*args, official_md5=src.member_md5)["method"] == "source-archive"
    with pytest.raises(IntegrityError, match="differs from the one decoded"):
        verify_test_split(root, src.fingerprint, src.test_images, np.roll(src.test_labels, 1),
                          official_md5=src.member_md5)
    # a pin wins over everything else
    pins = {src.fingerprint: {"test_images_sha256": "0" * 64, "test_labels_sha256": "0" * 64}}
    with pytest.raises(IntegrityError, match="pinned in the package"):
        verify_test_split(*args, pins=pins)


# ------------------------------------------------------------------------------------------------
# a model that carries the public test labels is flagged


def test_embedded_test_labels_are_flagged(tmp_path, built_root, one_thread):
    images, labels = clean_test_split(built_root)
    table = {image_hash(im): int(lab) for im, lab in zip(images, labels)}
    code = "\nTABLE.update(json.load(open(os.path.join(os.path.dirname(__file__), 'table.json'))))\n"
    folder, _logs = attack_submission(tmp_path, "label-table", code)
    (folder / "table.json").write_text(json.dumps(table))
    printed: list[str] = []
    result = score_quick(folder, built_root, tmp_path / "out", log=printed.append)
    (seed,) = result["per_seed"]
    assert seed["final_test_acc"] == 1.0 and seed["flipped_test_acc"] == pytest.approx(CHANCE, abs=0.01)
    integrity = json.loads(_written(tmp_path / "out").read_text())["integrity"]
    assert integrity["suspicious"] is True and integrity["flip_gap"] > 0.85
    assert integrity["flip_gap_threshold"] == 0.1 and integrity["reasons"]
    assert any("SUSPICIOUS" in line for line in printed)


# ------------------------------------------------------------------------------------------------
# children that misbehave give a clear failure, never a silent success


def test_exit_zero_without_a_report_fails(tmp_path, built_root, capsys, one_thread):
    at_import = write_submission(tmp_path / "exit-import", {**META, "entry": "m.py"},
                                 {"m.py": "import os\nos._exit(0)\n"})
    assert lb_main(["validate", str(at_import)]) == 1
    err = capsys.readouterr().err
    assert "exited with code 0" in err and "without writing its report" in err and len(err.strip().splitlines()) == 1

    in_training = write_submission(tmp_path / "exit-train", {**META, "entry": "m.py"},
                                   {"m.py": TINY_NET + "\ndef preprocess(images, labels):\n"
                                                       "    import os\n    os._exit(0)\n"})
    out = tmp_path / "out"
    rc = lb_main(["score", str(in_training), "--root", str(built_root), "--variant", "ops", "--preset", "cpu-smoke",
                  "--device", "cpu", "--out", str(out), "--quiet", "--set", "epochs=1", "--set", "train_subset=64"])
    err = capsys.readouterr().err
    assert rc == 1 and "training seed 0" in err and "without writing its report" in err
    assert not list(out.glob("*.json"))


def test_a_hanging_entry_is_killed_with_its_process_group(tmp_path):
    """Without the sandbox, the child's process group is killed (tests/test_sandbox.py: with it,
    its whole PID namespace)."""
    pid_file = tmp_path / "grandchild.pid"
    folder = write_submission(tmp_path / "hang", {**META, "entry": "m.py"}, {"m.py": f"""
        import subprocess, time
        child = subprocess.Popen(["sleep", "600"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(600)
    """})
    limit = 6
    t0 = time.monotonic()
    with pytest.raises(WorkerFailed, match=f"time limit of {limit} s; its process group was killed"):
        validate_submission(folder, time_limit_s=limit, sandbox=False)
    assert time.monotonic() - t0 < limit + 30
    if pid_file.exists():  # the child got as far as the entry: what it started is gone too
        pid = int(pid_file.read_text())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_malformed_outputs_are_refused(tmp_path):
    good = np.zeros((4, 10), np.float32)
    np.save(tmp_path / "good.npy", good)
    assert read_logits(tmp_path, "good.npy", 4, 10, "x").shape == (4, 10)
    cases = {
        "nan": (np.full((4, 10), np.nan, np.float32), "non-finite"),
        "shape": (np.zeros((4, 9), np.float32), r"got float32 \(4, 9\)"),
        "dtype": (np.zeros((4, 10), np.float64), "float32"),
    }
    for name, (arr, match) in cases.items():
        np.save(tmp_path / f"{name}.npy", arr)
        with pytest.raises(WorkerFailed, match=match):
            read_logits(tmp_path, f"{name}.npy", 4, 10, name)
    np.save(tmp_path / "pickle.npy", np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)
    with pytest.raises(WorkerFailed, match="not a plain .npy"):
        read_logits(tmp_path, "pickle.npy", 4, 10, "pickle")
    os.symlink(tmp_path / "good.npy", tmp_path / "link.npy")
    with pytest.raises(WorkerFailed, match="symbolic link"):
        read_logits(tmp_path, "link.npy", 4, 10, "link")
    with pytest.raises(WorkerFailed, match="did not write"):
        read_logits(tmp_path, "missing.npy", 4, 10, "missing")


# ------------------------------------------------------------------------------------------------
# imports only from source


def test_planted_bytecode_is_refused_and_never_loaded(tmp_path, monkeypatch, capsys):
    from cifar10s.leaderboard.sandbox.entry import import_entry

    folder = write_submission(tmp_path / "pyc", {**META, "entry": "model.py"},
                              {"model.py": "import helper\n" + TINY_NET, "helper.py": "PLANTED = False\n"})
    payload = tmp_path / "payload.py"
    payload.write_text("PLANTED = True\n")
    for name in ("model.py", "helper.py"):  # unchecked-hash .pyc: a normal import uses it whatever the source says
        py_compile.compile(str(payload), cfile=importlib.util.cache_from_source(str(folder / name)),
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, doraise=True)

    with pytest.raises(SubmissionError, match=r"__pycache__/model\.cpython-\d+\.pyc is compiled code"):
        load_submission(folder)
    assert lb_main(["validate", str(folder)]) == 1
    assert "is compiled code" in capsys.readouterr().err

    # positive control: Python's own loader runs the planted bytecode instead of model.py
    spec = importlib.util.spec_from_file_location("pyc_control", folder / "model.py")
    control = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(control)
    assert control.PLANTED is True
    # the entry loader compiles model.py and helper.py from source
    for attr in ("path_hooks", "path", "dont_write_bytecode"):
        monkeypatch.setattr(sys, attr, list(getattr(sys, attr)) if attr != "dont_write_bytecode" else False)
    monkeypatch.delitem(sys.modules, "helper", raising=False)
    module = import_entry(folder, "model.py")
    try:
        assert not hasattr(module, "PLANTED") and callable(module.build_model)
        assert sys.modules["helper"].PLANTED is False
    finally:
        sys.modules.pop("helper", None)
        sys.modules.pop("cifar10s_submission", None)
        sys.path_importer_cache.clear()


def _written(out: Path) -> Path:
    """The one result file a scoring run wrote into ``out`` (the returned record carries no path)."""
    (path,) = sorted(out.glob("*.json"))
    return path
