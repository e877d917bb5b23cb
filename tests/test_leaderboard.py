"""Leaderboard: submissions, scoring with provenance, resume, data isolation.

Training runs use the ``cpu-smoke`` preset (2 epochs, 1,024 training images, 500 test images per
epoch) and LeNet-5 or a tiny CNN on the shared real CIFAR-10 subset (``built_root``: ``clean`` +
``ops-k1``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import cifar10s
from cifar10s.cli.main import build_parser
from cifar10s.cli.main import main as lb_main
from cifar10s.leaderboard import (
    ScoringInterrupted,
    SubmissionError,
    data_caveats,
    load_submission,
    score_submission,
)
from cifar10s.store import (
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    clean_folder,
    load_array,
    sha256_file,
    variant_folder,
    verify_folder,
)
from cifar10s.variants import VariantSpec

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "leaderboard" / "submissions"
META = {"name": "Test entry", "authors": ["A. Tester"], "link": "https://example.org/paper"}
TIMING_FIELDS = {"train_time", "eval_time", "images_per_sec", "elapsed"}


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_submission(folder: Path, meta: dict | str | None, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if meta is not None:
        text = meta if isinstance(meta, str) else json.dumps(meta)
        (folder / "submission.json").write_text(text)
    for name, src in (files or {}).items():
        (folder / name).write_text(textwrap.dedent(src))
    return folder


TINY_NET = """
import torch
from torch import nn

class Tiny(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, num_classes)
    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

def build_model(num_classes):
    return Tiny(num_classes)
"""


# ------------------------------------------------------------------------------------------------
# validation


def test_example_submissions_validate(capsys):
    subs = sorted(p for p in EXAMPLES.iterdir() if (p / "submission.json").is_file())
    assert len(subs) >= 2
    loaded = [load_submission(p) for p in subs]
    assert any(s.model is not None and s.entry is None for s in loaded)  # metadata only
    assert any(s.entry is not None and s.hooks is not None for s in loaded)  # code with build_model
    for s in loaded:
        assert s.files and len(s.digest) == 64
    assert lb_main(["validate", *map(str, subs)]) == 0
    assert capsys.readouterr().out.count("ok: ") == len(subs)


BAD_CASES = [
    ("not-json", '{"name": "x", ', {}, "not valid JSON"),
    ("not-object", "[1, 2]", {}, "must hold a JSON object"),
    ("no-file", None, {}, "no submission.json"),
    ("unknown-key", {**META, "model": "resnet18", "method": "standard", "modle": 1}, {},
     "unknown key 'modle' (did you mean 'model'?)"),
    ("missing-name", {"authors": ["a"], "link": "https://x.org", "model": "resnet18", "method": "standard"}, {},
     "missing required key 'name'"),
    ("missing-authors", {"name": "x", "link": "https://x.org", "model": "resnet18", "method": "standard"}, {},
     "missing required key 'authors'"),
    ("bad-authors", {**META, "authors": "me", "model": "resnet18", "method": "standard"}, {},
     "'authors' must be a non-empty list"),
    ("bad-link", {**META, "link": "javascript:alert(1)", "model": "resnet18", "method": "standard"}, {},
     "'link' must be an http(s) URL"),
    ("neither", dict(META), {}, "missing 'model'"),
    ("both", {**META, "model": "resnet18", "method": "standard", "entry": "m.py"}, {"m.py": TINY_NET},
     "not both"),
    ("unknown-model", {**META, "model": "resnet19", "method": "standard"}, {}, "unknown model 'resnet19'"),
    ("model-without-method", {**META, "model": "resnet18"}, {}, "'method' is required"),
    ("unknown-method", {**META, "model": "resnet18", "method": "randaug"}, {},
     "unknown method 'randaug' (did you mean 'randaugment'?)"),
    ("unknown-defense", {**META, "model": "resnet18", "method": "standard", "defense": "blur"}, {},
     "unknown defense 'blur'"),
    ("bad-defense-kwargs", {**META, "model": "resnet18", "method": "standard", "defense": "jpeg",
                            "defense_kwargs": {"qualty": 10}}, {}, "defense 'jpeg'"),
    ("bad-override", {**META, "model": "resnet18", "method": "standard", "overrides": {"epochs": 1}}, {},
     "'overrides' cannot set 'epochs'"),
    ("entry-missing", {**META, "entry": "model.py"}, {}, "entry file 'model.py' does not exist"),
    ("entry-outside", {**META, "entry": "../model.py"}, {}, "must be a relative path inside"),
    ("entry-not-py", {**META, "entry": "model.txt"}, {"model.txt": TINY_NET}, "must be the relative path of a .py"),
    ("import-error", {**META, "entry": "m.py"}, {"m.py": "import does_not_exist_xyz\n"},
     "importing m.py failed: ModuleNotFoundError"),
    ("hook-missing", {**META, "entry": "m.py"}, {"m.py": "def build_modle(num_classes):\n    pass\n"},
     "defines no build_model(num_classes) function (did you mean 'build_modle'?)"),
    ("hook-signature", {**META, "entry": "m.py"}, {"m.py": "def build_model(num_classes, width):\n    pass\n"},
     "build_model(num_classes, width) has the wrong signature"),
    ("train-step-signature", {**META, "entry": "m.py"},
     {"m.py": TINY_NET + "\ndef train_step(model, x):\n    pass\n"}, "train_step(model, x) has the wrong signature"),
    ("bad-training-method", {**META, "entry": "m.py"}, {"m.py": TINY_NET + "\ntraining_method = 'fancy'\n"},
     "training_method 'fancy' is not one of"),
    ("method-conflict", {**META, "entry": "m.py", "method": "mixup"},
     {"m.py": TINY_NET + "\ntraining_method = 'cutout'\n"}, "disagrees with 'method'"),
    ("custom-loop-with-at", {**META, "entry": "m.py", "method": "at"},
     {"m.py": TINY_NET + "\ndef make_optimizer(model, config):\n    pass\n"}, "uses adversarial training"),
    ("not-a-module", {**META, "entry": "m.py"}, {"m.py": "def build_model(num_classes):\n    return 42\n"},
     "returned int, not a torch.nn.Module"),
    ("wrong-output", {**META, "entry": "m.py"},
     {"m.py": "from torch import nn\ndef build_model(num_classes):\n"
              "    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 7))\n"}, "(2, 10), got (2, 7)"),
    ("build-raises", {**META, "entry": "m.py"},
     {"m.py": "def build_model(num_classes):\n    raise RuntimeError('boom')\n"}, "RuntimeError: boom"),
]


@pytest.mark.parametrize("case,meta,files,expected", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_malformed_submissions_get_clear_errors(tmp_path, case, meta, files, expected, capsys):
    folder = write_submission(tmp_path / f"sub-{case}", meta, files)
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    assert expected in str(info.value), str(info.value)
    assert str(folder) in str(info.value)
    # the CLI reports the same message with exit code 2
    assert lb_main(["validate", str(folder)]) == 1
    assert expected in capsys.readouterr().err


def test_all_problems_reported_at_once(tmp_path):
    folder = write_submission(tmp_path / "s", {"link": "ftp://x", "model": "nope", "method": "nope", "bogus": 1})
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    assert len(info.value.problems) >= 5


# ------------------------------------------------------------------------------------------------
# round trip: validate -> train -> score -> render


def test_round_trip_provenance_and_render(tmp_path, built_root, capsys, one_thread):
    sub = write_submission(tmp_path / "lenet-standard", {**META, "model": "lenet5", "method": "standard"})
    assert lb_main(["validate", str(sub)]) == 0
    out, site = tmp_path / "results", tmp_path / "site"
    rc = lb_main(["score", str(sub), "--root", str(built_root), "--variant", "ops", "--preset", "cpu-smoke",
                  "--seeds", "0", "1", "--device", "cpu", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "paper Table 2 (lenet5, standard, ops): 22.19%" in printed
    assert "differs from the paper's settings" in printed
    # the shared subset is not the official CIFAR-10 release: said, whatever the settings
    assert "training data built from a CIFAR-10 copy that is not the official release" in printed

    path = out / "lenet-standard--ops-k1--cpu-smoke.json"
    r = json.loads(path.read_text())
    folder = variant_folder(built_root, VariantSpec("ops"))
    manifest = verify_folder(folder)
    assert r["format"] == "cifar10s-leaderboard-result"
    assert r["dataset"]["variant"] == "ops-k1" and r["dataset"]["paper_train_set"] == "ops"
    assert r["dataset"]["manifest_sha256"] == sha256_file(folder / "manifest.json")
    assert r["dataset"]["train_images_sha256"] == sha256_file(folder / TRAIN_IMAGES) == manifest["files"][TRAIN_IMAGES]["sha256"]
    assert r["dataset"]["official_cifar10"] is False and r["dataset"]["recipe"] is None  # OPS has no EM
    assert data_caveats(r["dataset"]) == [
        "built from a CIFAR-10 copy that is not the official release (10000 training images)"]
    assert data_caveats({**r["dataset"], "official_cifar10": True}) == []
    assert data_caveats({**r["dataset"], "official_cifar10": True, "recipe": "v1"}) == []
    assert data_caveats({**r["dataset"], "official_cifar10": True, "recipe": "cpu-demo"}) == [
        "EM noise from recipe 'cpu-demo', not the release recipe 'v1'"]
    assert r["test_set"]["num_test"] == 2000 and r["test_set"]["folder"] == "clean"
    assert r["test_set"]["test_labels_sha256"] == sha256_file(clean_folder(built_root) / TEST_LABELS)
    assert r["code"]["cifar10s"] == cifar10s.__version__ and "git_commit" in r["code"]
    assert r["seeds"] == [0, 1] and r["preset"] == "cpu-smoke"
    assert r["preset_diff"]["epochs"] == {"paper": 200, "used": 2}
    assert r["preset_diff"]["train_subset"] == {"paper": None, "used": 1024}
    assert "seed" not in r["preset_diff"] and r["paper_setting"] is False
    assert r["device"] == "cpu" and r["wall_time_s"] > 0 and r["train_time_s"] > 0
    assert r["submission"]["model"] == "lenet5" and r["submission"]["sha256"]
    assert set(r["submission"]["files"]) == {"submission.json"}
    finals = [p["final_test_acc"] for p in r["per_seed"]]
    assert [p["seed"] for p in r["per_seed"]] == [0, 1]
    for p in r["per_seed"]:
        assert 0.0 <= p["final_test_acc"] <= 1.0 and 0.0 <= p["best_test_acc"] <= 1.0
        assert p["best_epoch"] in (1, 2) and len(p["records"]) == 2 and p["num_train"] == 1024
    s = r["summary"]["final_test_acc"]
    assert s["n"] == 2 and s["mean"] == pytest.approx(np.mean(finals))
    assert s["std"] == pytest.approx(np.std(finals, ddof=1))
    assert r["eval"] == {"per_epoch_images": 500, "final_images": 2000, "accuracy_units": "fraction in [0, 1]"}
    assert r["paper"] and r["paper"][0]["table"] == "table2" and r["paper"][0]["test_acc"] == 22.19


# ------------------------------------------------------------------------------------------------
# the harness owns the data: submission code never reaches the test labels

HOSTILE = '''
import hashlib, sys, types
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PKG = str(Path(__import__("cifar10s").__file__).resolve().parent)
ARGS = set()      # fingerprints of arrays reachable from objects handed to hooks
STACK = set()     # fingerprints of arrays in the harness's frames (locals) and module globals
STRINGS = []      # strings reachable from hook arguments
CALLS = {"forward_eval": 0, "forward_train": 0, "preprocess": 0, "train_step": 0, "make_optimizer": 0}

def _fp(a):
    a = np.ascontiguousarray(a)
    out = {(a.shape, hashlib.sha256(a.tobytes()).hexdigest())}
    if a.ndim == 1 and a.dtype.kind in "iu":
        b = np.ascontiguousarray(a.astype(np.int64))
        out.add((b.shape, hashlib.sha256(b.tobytes()).hexdigest()))
    return out

def walk(obj, sink, strings=None, depth=0, seen=None):
    seen = set() if seen is None else seen
    if depth > 5 or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        if obj.numel():
            sink.update(_fp(obj.detach().cpu().numpy()))
        return
    if isinstance(obj, np.ndarray):
        sink.update(_fp(np.asarray(obj)))
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
            walk(k, sink, strings, depth + 1, seen)
            walk(v, sink, strings, depth + 1, seen)
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for v in list(obj):
            walk(v, sink, strings, depth + 1, seen)
        return
    if isinstance(obj, torch.optim.Optimizer):
        walk(obj.state_dict(), sink, strings, depth + 1, seen)
        walk(obj.param_groups, sink, strings, depth + 1, seen)
    for name in dir(obj) if not isinstance(obj, nn.Module) else ():
        if "test" in name.lower() or "label" in name.lower():
            try:
                walk(getattr(obj, name), sink, strings, depth + 1, seen)
            except Exception:
                pass
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        walk(d, sink, strings, depth + 1, seen)

def walk_stack():
    f = sys._getframe(1)
    while f is not None:
        if f.f_code.co_filename.startswith(PKG):
            walk(dict(f.f_locals), STACK)
            for v in list(f.f_globals.values()):
                walk(v, STACK, depth=4)
        f = f.f_back

class Hostile(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, num_classes)
    def forward(self, x):
        key = "forward_train" if self.training else "forward_eval"
        CALLS[key] += 1
        if CALLS[key] <= 3:
            walk_stack()
            walk(x, ARGS if self.training else STACK)
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

def build_model(num_classes):
    return Hostile(num_classes)

def preprocess(images, labels):
    CALLS["preprocess"] += 1
    walk((images, labels), ARGS, STRINGS)
    walk_stack()
    return images
'''

HOSTILE_CUSTOM = HOSTILE + '''
def make_optimizer(model, config):
    CALLS["make_optimizer"] += 1
    walk((model, config), ARGS, STRINGS)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)

def train_step(model, x, y, optimizer, *, epoch, step, generator):
    CALLS["train_step"] += 1
    if CALLS["train_step"] <= 3:
        walk((model, x, y, optimizer, generator), ARGS, STRINGS)
        walk_stack()
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()
'''


def _fingerprints(a: np.ndarray) -> set:
    a = np.ascontiguousarray(a)
    out = {(a.shape, hashlib.sha256(a.tobytes()).hexdigest())}
    b = np.ascontiguousarray(a.astype(np.int64))
    out.add((b.shape, hashlib.sha256(b.tobytes()).hexdigest()))
    return out


@pytest.mark.parametrize("custom_loop", [False, True], ids=["trainer", "custom-loop"])
def test_submission_cannot_reach_test_labels(tmp_path, built_root, custom_loop, one_thread):
    from cifar10s.training.evaluation import subset_indices

    folder = write_submission(tmp_path / "hostile", {**META, "entry": "hostile.py"},
                              {"hostile.py": HOSTILE_CUSTOM if custom_loop else HOSTILE})
    sub = load_submission(folder)
    assert sub.custom_loop is custom_loop
    mod = sub.hooks.module
    mod.ARGS.clear(), mod.STACK.clear(), mod.STRINGS.clear()
    result = score_submission(sub, built_root, variant="ops", preset="cpu-smoke", seeds=[0], device="cpu",
                              out=tmp_path / "out", log=None)
    assert result["submission"]["custom_loop"] is custom_loop
    assert mod.CALLS["forward_eval"] > 0 and mod.CALLS["preprocess"] == 1
    if custom_loop:
        assert mod.CALLS["train_step"] > 0 and mod.CALLS["make_optimizer"] == 1

    # only now, with scoring finished, does the test itself look at the test split
    cdir = clean_folder(built_root)
    cman = verify_folder(cdir)
    test_labels = np.asarray(load_array(cdir, TEST_LABELS, cman, mmap=False))
    test_images = np.asarray(load_array(cdir, "test_images.npy", cman, mmap=False))
    idx = subset_indices(len(test_labels), 500, "eval").numpy()
    forbidden_labels = _fingerprints(test_labels) | _fingerprints(test_labels[idx])
    train_labels = np.asarray(load_array(cdir, TRAIN_LABELS, cman, mmap=False))

    # the walkers work: they found the training labels handed to preprocess, and the test images in the
    # evaluator's frames (the model must see those to be scored)
    assert _fingerprints(train_labels) & mod.ARGS
    assert _fingerprints(test_images) & mod.STACK
    # ... but no test labels anywhere: not in hook arguments, not in the harness's frames or globals
    assert not forbidden_labels & mod.ARGS
    assert not forbidden_labels & mod.STACK
    # the objects handed to hooks hold no test data and no path to it
    assert not (_fingerprints(test_images) | _fingerprints(test_images[idx])) & mod.ARGS
    assert not [s for s in mod.STRINGS if "test" in s.lower() or "clean" in s]


def test_tampered_test_labels_are_detected(tmp_path, built_root):
    from cifar10s.leaderboard.scoring import HeldOutScorer
    from cifar10s.models import build_model
    from cifar10s.store import IntegrityError

    root = tmp_path / "root"
    shutil.copytree(clean_folder(built_root), clean_folder(root))
    scorer = HeldOutScorer(root, subset=100)
    model = build_model("lenet5")
    assert 0.0 <= scorer(model) <= 1.0
    path = clean_folder(root) / TEST_LABELS
    labels = np.load(path)
    np.save(path, np.roll(labels, 1))
    with pytest.raises(IntegrityError, match="changed during scoring"):
        scorer(model)


# ------------------------------------------------------------------------------------------------
# resume


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
    kw = dict(variant="ops", preset="cpu-smoke", seeds=[0, 1], device="cpu", log=None)
    a, b = tmp_path / "a", tmp_path / "b"
    stop_after_first = lambda record, model: record.epoch == 1  # noqa: E731
    with pytest.raises(ScoringInterrupted, match="run the same command again"):
        score_submission(folder, built_root, out=a, callback=stop_after_first, **kw)
    assert not list(a.glob("*.json"))  # nothing published for an unfinished run
    resumed = score_submission(folder, built_root, out=a, **kw)
    fresh = score_submission(folder, built_root, out=b, **kw)
    assert resumed["per_seed"][0]["resumed_from_epoch"] == 1 and fresh["per_seed"][0]["resumed_from_epoch"] == 0
    for ra, rb in zip(resumed["per_seed"], fresh["per_seed"]):
        assert ra["final_test_acc"] == rb["final_test_acc"]
        assert ra["best_test_acc"] == rb["best_test_acc"] and ra["best_epoch"] == rb["best_epoch"]
        assert _strip(ra["records"]) == _strip(rb["records"])
        wa, wb = torch.load(Path(ra["workdir"]) / "model.pt"), torch.load(Path(rb["workdir"]) / "model.pt")
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert resumed["summary"]["final_test_acc"] == fresh["summary"]["final_test_acc"]

    # a work folder refuses to resume a different submission
    meta = json.loads((folder / "submission.json").read_text())
    (folder / "submission.json").write_text(json.dumps({**meta, "description": "changed"}))
    with pytest.raises(ValueError, match="holds a scoring run of something else"):
        score_submission(folder, built_root, out=a, **kw)


# ------------------------------------------------------------------------------------------------


def test_register_adds_subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"score", "submit", "validate", "leaderboard", "baselines", "shuffle"} <= set(sub.choices)
    args = parser.parse_args(["submit", "x", "--root", "r", "--seeds", "0", "1", "2"])
    assert args.seeds == [0, 1, 2] and args.variant == "cifar10s" and args.preset == "paper"
    assert args.func.__name__ == "cmd_score"
