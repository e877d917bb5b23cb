"""The scorer's host side, attacked: what a child leaves behind is someone else's bytes.

Each attack is a hostile submission whose code runs at import in the child it targets (the
``task`` in its ``job.json``: inspect, train or predict). They swap the child's log for a link to
the signing key or for a FIFO, copy secrets into their report, leave setuid files, hard links and
too many files, and hold memory across processes; the scorer must refuse each with one line,
quote nothing it should not, never hang, and leave nothing dangerous on disk.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from pathlib import Path

import pytest
from leaderboard_kit import META, QUICK, TINY_NET, write_submission
from test_sandbox import hostile, in_box, reports

from cifar10s.leaderboard import SubmissionError, score_submission, validate_submission
from cifar10s.leaderboard.sandbox.bwrap import Limits, SandboxUnavailable, SecretExposed, detect
from cifar10s.leaderboard.sandbox.childfiles import ChildFileRefused, Quota, audit_folder, read_child_file
from cifar10s.leaderboard.sandbox.failures import WorkerFailed
from cifar10s.leaderboard.submission import load_submission

SECRET = "PRIVATE-KEY-MATERIAL-0123456789"


@pytest.fixture(scope="module")
def box():
    try:
        return detect(quiet=True)
    except SandboxUnavailable as exc:
        pytest.skip(f"bubblewrap cannot run here: {exc}")


def _when(task: str, code: str) -> str:
    """``code`` run only in the child of ``task`` (the others import the entry normally)."""
    body = "\n".join("    " + line for line in code.strip().splitlines())
    return f"if json.load(open('job.json'))['task'] == {task!r}:\n{body}\n"


def _secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / "signing-key.pem"
    secret.write_text(f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n")
    secret.chmod(0o600)
    return secret


def _score(folder, root, out, box, **kw):
    return score_submission(folder, root, variant="ops", preset="cpu-smoke", seeds=[0], device="cpu", out=out,
                            overrides=dict(QUICK), log=None, sandbox=box, **kw)


# ------------------------------------------------------------------------------------------------
# the child's log, swapped


@pytest.mark.parametrize("task", ["inspect", "train", "predict"])
def test_a_log_swapped_for_a_link_to_the_key_is_never_read(tmp_path, box, built_root, task, capsys):
    secret = _secret_file(tmp_path)
    folder, _logs = hostile(tmp_path, _when(task, f"""
os.unlink("worker.log"); os.symlink({str(secret)!r}, "worker.log")
print("swapped", flush=True)
os._exit(3)
"""))
    with pytest.raises(WorkerFailed) as err:
        _score(folder, built_root, tmp_path / "out", box, progress=True)
    printed = capsys.readouterr()
    assert SECRET not in str(err.value) and SECRET not in printed.out + printed.err
    assert "worker.log is a symbolic link" in str(err.value)  # one line naming the file
    assert secret.read_text().count(SECRET) == 1 and not secret.is_symlink()  # untouched


@pytest.mark.parametrize("task", ["inspect", "train", "predict"])
def test_a_log_swapped_for_a_fifo_does_not_hang_the_scorer(tmp_path, box, built_root, task):
    folder, _logs = hostile(tmp_path, _when(task, """
os.unlink("worker.log"); os.mkfifo("worker.log")
import time; time.sleep(60)
"""))
    t0 = time.monotonic()
    with pytest.raises(WorkerFailed) as err:
        _score(folder, built_root, tmp_path / "out", box, progress=True, time_limit_s=8)
    assert time.monotonic() - t0 < 60  # the time limit held, nothing blocked on the FIFO
    assert "worker.log is a FIFO" in str(err.value) or "time limit" in str(err.value)


def test_a_report_swapped_for_a_link_or_fifo_is_refused_without_being_followed(tmp_path):
    (tmp_path / "real.json").write_text('{"ok": true}')
    os.symlink(tmp_path / "real.json", tmp_path / "link.json")
    os.mkfifo(tmp_path / "fifo.json")
    os.link(tmp_path / "real.json", tmp_path / "hard.json")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "sub", tmp_path / "dirlink")
    (tmp_path / "sub" / "x.json").write_text("{}")
    for name, why in (("link.json", "symbolic link"), ("fifo.json", "FIFO"), ("hard.json", "hard links"),
                      ("dirlink/x.json", "symbolic link")):
        with pytest.raises(ChildFileRefused, match=why):
            read_child_file(tmp_path, name, max_bytes=1 << 20, what="test")
    (tmp_path / "big.json").write_bytes(b"x" * 100)
    with pytest.raises(ChildFileRefused, match="more than the 10"):
        read_child_file(tmp_path, "big.json", max_bytes=10, what="test")
    assert read_child_file(tmp_path, "sub/x.json", max_bytes=10, what="test") == b"{}"


# ------------------------------------------------------------------------------------------------
# secrets out of reach


def test_run_from_the_home_folder_the_key_beside_it_is_not_visible(tmp_path, box, built_root, monkeypatch):
    """``python -m cifar10s.cli score`` from a home folder: sys.path[0] is the home folder. The
    child searches every folder it can see for the key; none may hold it."""
    home = tmp_path / "home"
    key = home / ".config" / "cifar10s" / "signing-key.pem"
    key.parent.mkdir(parents=True)
    key.write_text(SECRET)
    key.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    monkeypatch.syspath_prepend(str(home))
    folder, logs = hostile(tmp_path, """
found = []
for top in ["/"]:
    for d, dirs, names in os.walk(top):
        if d.startswith(("/proc", "/sys", "/dev")):
            dirs[:] = []; continue
        found += [os.path.join(d, n) for n in names if n == "signing-key.pem"]
report(found=found, key=os.path.exists({key!r}), home=os.path.exists({home!r}))
""", key=str(key), home=str(home))
    validate_submission(folder, check_model=False, sandbox=in_box(box, logs))
    (seen,) = reports(logs)
    assert seen == {"found": [], "key": False, "home": False}


def test_a_bind_that_would_show_the_key_stops_the_child_before_it_starts(tmp_path, box, monkeypatch):
    from cifar10s.leaderboard.sandbox import bwrap

    home = tmp_path / "home"
    (home / ".config" / "cifar10s").mkdir(parents=True)
    readable = bwrap.read_only_paths()
    monkeypatch.setattr(bwrap, "read_only_paths", lambda: [*readable, str(home)])
    monkeypatch.setenv("HOME", str(home))
    folder, logs = hostile(tmp_path, "report(ran=True)")
    with pytest.raises(SecretExposed, match="holds"):
        validate_submission(folder, check_model=False, sandbox=in_box(box, logs))
    assert reports(logs) == []  # nothing started


@pytest.mark.parametrize("field, value", [
    ("note", "copied key material"),  # a field a child may not report: a copied secret
    ("train_acc", "1.0"),             # a string where a number in [0, 1] belongs
])
def test_a_record_field_out_of_the_schema_fails_the_run(tmp_path, box, built_root, field, value):
    # the entry wraps the trainer's result and slips the field into its first epoch's record
    folder, _logs = hostile(tmp_path, _when("train", f"""
from cifar10s.training.config import TrainResult
real = TrainResult.to_dict
def patched(self):
    out = real(self)
    out["records"][0][{field!r}] = {value!r}
    return out
TrainResult.to_dict = patched
"""))
    with pytest.raises(WorkerFailed, match=rf"records\[0\]\.{field}"):
        _score(folder, built_root, tmp_path / "out", box)
    assert not list((tmp_path / "out").glob("*.json"))  # no result written


# ------------------------------------------------------------------------------------------------
# what a child leaves on disk


def test_a_setuid_file_is_refused_deleted_and_never_the_scorers(tmp_path, box, built_root):
    folder, logs = hostile(tmp_path, _when("train", """
work = json.load(open('job.json'))['workdir']
path = os.path.join(work, "suid")
with open(path, "w") as f:
    f.write("#!/bin/sh\\nid\\n")
os.chmod(path, 0o6755)
report(uid=os.getuid(), mode=oct(os.stat(path).st_mode))
"""))
    out = tmp_path / "out"
    with pytest.raises(WorkerFailed, match="setuid"):
        _score(folder, built_root, out, in_box(box, logs))
    (seen,) = reports(logs)
    assert seen["uid"] == 65534 and seen["mode"].endswith("6755")  # it did make one
    left = [p for p in out.rglob("*") if p.is_file() and p.stat().st_mode & (stat.S_ISUID | stat.S_ISGID)]
    assert left == []
    if os.geteuid() == 0:  # a root scorer's child is uid 65534 on the host: nothing it made is root's
        made = list((out / ".work").rglob("seed-0/*"))
        assert made and all(p.lstat().st_uid == 65534 for p in made)


def test_a_child_of_a_root_scorer_runs_as_an_unprivileged_host_user(tmp_path, box):
    if os.geteuid() != 0:
        pytest.skip("the scorer is not root: its children run as its own uid, which is already unprivileged")
    folder, logs = hostile(tmp_path, """
open(os.path.join(LOG, "made-by-child"), "w").write("x")
report(uid=os.getresuid(), gid=os.getresgid(), groups=os.getgroups(),
       caps=[l for l in open("/proc/self/status").read().splitlines() if l.startswith(("CapEff", "CapPrm"))])
""")
    validate_submission(folder, check_model=False, sandbox=in_box(box, logs))
    (seen,) = reports(logs)
    assert seen["uid"] == [65534] * 3 and seen["gid"] == [65534] * 3 and seen["groups"] == []
    assert all(line.split()[1] == "0000000000000000" for line in seen["caps"])
    st = (logs / "made-by-child").stat()
    assert (st.st_uid, st.st_gid) == (65534, 65534)


def test_hard_links_and_too_many_files_are_refused(tmp_path, box, built_root):
    folder, _logs = hostile(tmp_path, _when("train", """
work = json.load(open('job.json'))['workdir']
for i in range(60):
    open(os.path.join(work, f"junk-{{i}}"), "w").write("x")
"""))
    small = dataclasses.replace(box, limits=dataclasses.replace(box.limits, work_files=40))
    with pytest.raises(WorkerFailed, match="more than 40 files"):
        _score(folder, built_root, tmp_path / "out", small)
    assert not list((tmp_path / "out" / ".work").rglob("junk-*"))  # not needed to resume: deleted

    folder2, _ = hostile(tmp_path, _when("train", """
work = json.load(open('job.json'))['workdir']
open(os.path.join(work, "a"), "w").write("x")
os.link(os.path.join(work, "a"), os.path.join(work, "b"))
"""), name="hardlink")
    with pytest.raises(WorkerFailed, match="hard links"):
        _score(folder2, built_root, tmp_path / "out2", box)


def test_a_sparse_file_counts_in_full_against_the_quota(tmp_path):
    with open(tmp_path / "sparse", "wb") as f:
        f.truncate(3 << 30)
    with pytest.raises(ChildFileRefused, match="bytes"):
        audit_folder([tmp_path], Quota(max_bytes=2 << 30, max_files=10), what="test")


def test_a_hard_linked_submission_file_is_refused(tmp_path, built_root):
    from cifar10s.store import TEST_LABELS, clean_folder

    folder = write_submission(tmp_path / "links", {**META, "entry": "m.py"}, {"m.py": TINY_NET})
    os.link(clean_folder(built_root) / TEST_LABELS, folder / "labels.npy")
    with pytest.raises(SubmissionError, match="hard links"):
        load_submission(folder)


# ------------------------------------------------------------------------------------------------
# resources as a whole


def test_memory_held_across_processes_and_tmpfs_is_capped_as_a_whole(tmp_path, box):
    if box.cgroups.version == "none":
        pytest.skip(f"no cgroup can be made here: {box.cgroups.reason}")
    folder, logs = hostile(tmp_path, """
import subprocess
hold = "import time; b = b'x' * (120 << 20); time.sleep(30)"
kids = [subprocess.Popen([sys.executable, "-c", hold]) for _ in range(3)]
open("/dev/shm/fill", "wb").write(b"y" * (100 << 20))
mine = b"z" * (120 << 20)
import time; time.sleep(8)
report(survived=True)
""")
    capped = dataclasses.replace(in_box(box, logs), limits=dataclasses.replace(box.limits, memory=300 << 20))
    with pytest.raises((WorkerFailed, SubmissionError)):
        validate_submission(folder, check_model=False, sandbox=capped)
    assert reports(logs) == []  # it never got to say it held it all


def test_processes_are_capped_for_a_root_scorer_too(tmp_path, box):
    if box.cgroups.version == "none":
        pytest.skip(f"no cgroup can be made here: {box.cgroups.reason}")
    folder, logs = hostile(tmp_path, """
import subprocess
started, refused = 0, 0
kids = []
for _ in range(80):
    try:
        kids.append(subprocess.Popen(["/bin/sleep", "5"])); started += 1
    except OSError:
        refused += 1
for k in kids:
    k.kill()
report(started=started, refused=refused)
""")
    capped = dataclasses.replace(in_box(box, logs), limits=dataclasses.replace(box.limits, processes=30))
    validate_submission(folder, check_model=False, sandbox=capped)
    (seen,) = reports(logs)
    assert seen["started"] < 30 and seen["refused"] > 0


def test_the_result_records_the_caps_in_force(tmp_path, box):
    record = box.describe()
    assert record["host_uid"] == (65534 if os.geteuid() == 0 else os.geteuid())
    assert record["limits"]["work_files"] == Limits().work_files and record["tmpfs_bytes"] <= 1 << 30
    assert record["cgroup"] == "none" if box.cgroups.version == "none" else record["cgroup"]["version"] in ("v1", "v2")
    with pytest.raises(ValueError, match="quota"):
        Limits.parse(["work_bytes=none"])
    assert Limits.parse(["memory=4G", "work_files=50"]).memory_cap == 4 << 30
