"""The operating-system sandbox around submission code, attacked.

Each attack is a tiny hostile submission written here. Most run where it is cheapest, in the
child that imports the entry (``validate``); the ones that target a result run a real scoring
(``cpu-smoke``, one short epoch). Attacks write what they did into a log folder the test makes
writable for them, so "it ran and found nothing" is told apart from "it never ran". Every test
here skips, with bubblewrap's own reason, only where the sandbox cannot start on this machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import time
import tracemalloc
from pathlib import Path

import pytest
from leaderboard_kit import META, QUICK, TINY_NET, write_submission

from cifar10s.cli.main import main as lb_main
from cifar10s.leaderboard import SubmissionError, score_submission, validate_submission
from cifar10s.leaderboard.sandbox.inert import inert_text
from cifar10s.leaderboard.sandbox.runner import TAIL_BYTES, WorkerFailed, read_tail, stage_files, verify_staged
from cifar10s.leaderboard.sandbox.bwrap import Limits, SandboxUnavailable, detect
from cifar10s.leaderboard.submission import load_submission


@pytest.fixture(scope="module")
def box():
    try:
        return detect()
    except SandboxUnavailable as exc:
        pytest.skip(f"bubblewrap cannot run here: {exc}")


def hostile(tmp_path: Path, code: str, name: str = "attack", **fmt) -> tuple[Path, Path]:
    """A submission whose entry runs ``code`` at import (``LOG``: the log folder) and then
    defines a tiny model; returns (folder, log folder)."""
    logs = tmp_path / f"{name}-logs"
    logs.mkdir()
    head = f"import json, os, sys\nLOG = {str(logs)!r}\nTOKEN = os.urandom(6).hex()\n"
    head += "def report(**kw):\n    open(os.path.join(LOG, f'{os.getpid()}-{TOKEN}.json'), 'w').write(json.dumps(kw))\n"
    folder = write_submission(tmp_path / name, {**META, "name": name, "entry": "m.py"},
                              {"m.py": head + code.format(**fmt) + "\n" + TINY_NET})
    return folder, logs


def reports(logs: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(logs.glob("*.json"))]


def in_box(box, logs: Path):
    return dataclasses.replace(box, writable=(str(logs.resolve()),))


def processes_with(marker: str) -> list[int]:
    """Host PIDs whose command line holds ``marker`` (scanning /proc: no process library needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


# ------------------------------------------------------------------------------------------------
# what the child can learn about the scorer


def test_proc_of_the_parent_shows_the_sandbox_not_the_scorer(tmp_path, box):
    folder, logs = hostile(tmp_path, """
ppid = os.getppid()
try:
    cwd = os.readlink(f"/proc/{{ppid}}/cwd")
except OSError as e:
    cwd = f"denied: {{e.errno}}"
report(ppid=ppid, cmdline=open(f"/proc/{{ppid}}/cmdline", "rb").read().decode(errors="replace"),
       cwd=cwd, pids=sorted(p for p in os.listdir("/proc") if p.isdigit()),
       environ=open("/proc/self/environ", "rb").read().decode(errors="replace"))
""")
    validate_submission(folder, check_model=False, sandbox=in_box(box, logs))
    (seen,) = reports(logs)
    mine = Path("/proc/self/cmdline").read_bytes().decode(errors="replace")
    assert seen["ppid"] == 1 and seen["pids"] == ["1", "2"]  # bubblewrap's init and the child, nothing else
    assert seen["cmdline"] != mine and "bwrap" in seen["cmdline"] and "test_sandbox.py" not in seen["cmdline"]
    assert seen["cwd"] != str(Path.cwd())
    # its scratch, or (a root scorer's child runs as another host user than the init) not readable
    assert Path(seen["cwd"]).name.startswith("cifar10s-worker-") or (box.drop_root and seen["cwd"] == "denied: 13")


def test_proc_mem_cannot_reach_the_scorer(tmp_path, box):
    """Search the memory of every process the child can see for a canary this process holds,
    and overwrite it where found; the canary must stay intact and unseen."""
    token = secrets.token_hex(8)
    canary = bytearray(b"SCORER-CANARY-" + token.encode())  # noqa: F841 - what the attack looks for
    folder, logs = hostile(tmp_path, """
needle = b"SCORER-CANARY-" + {token!r}.encode()
seen, hits, writes, errors = [], 0, 0, []
for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
    try:
        maps = open(f"/proc/{{pid}}/maps").read().splitlines()
        mem = open(f"/proc/{{pid}}/mem", "r+b", buffering=0)
    except OSError as e:
        errors.append(str(e)); continue
    seen.append(pid)
    for line in maps:
        addr, perms = line.split()[:2]
        if not perms.startswith("rw"):
            continue
        lo, hi = (int(a, 16) for a in addr.split("-"))
        try:
            mem.seek(lo); chunk = mem.read(min(hi - lo, 1 << 26))
        except OSError:
            continue
        at = chunk.find(needle)
        while at >= 0:
            hits += 1
            try:
                mem.seek(lo + at); mem.write(b"X" * len(needle)); writes += 1
            except OSError:
                pass
            at = chunk.find(needle, at + 1)
report(seen=seen, hits=hits, writes=writes, errors=errors)
""", token=token)
    validate_submission(folder, check_model=False, sandbox=in_box(box, logs))
    (seen,) = reports(logs)
    # it looked: only bubblewrap's init is there, and a root scorer's child (uid 65534 on the host,
    # the init is not) cannot even open that one's memory
    assert seen["seen"] == ([] if box.drop_root else ["1"]) and len(seen["seen"]) + len(seen["errors"]) >= 1
    assert seen["hits"] == 0 and seen["writes"] == 0
    assert bytes(canary) == b"SCORER-CANARY-" + token.encode()


def test_the_data_root_cannot_be_found(tmp_path, box, built_root):
    folder, logs = hostile(tmp_path, """
found, files = [], 0
for top, dirs, names in os.walk("/"):
    if top in ("/proc", "/sys", "/dev"):
        dirs[:] = []; continue
    files += len(names)
    if top.endswith(os.path.join("cifar10s-v1", "clean")) and "test_labels.npy" in names:
        found.append(top)
report(found=found, files=files)
""")
    assert (Path(built_root) / "cifar10s-v1" / "clean" / "test_labels.npy").is_file()  # there is one to find
    validate_submission(folder, check_model=False, sandbox=in_box(box, logs))
    (seen,) = reports(logs)
    assert seen["found"] == [] and seen["files"] > 1000  # it walked the whole visible tree


def test_a_bound_folder_does_not_reveal_the_data_root_or_the_results(tmp_path, box, built_root, monkeypatch):
    # `python -m cifar10s.cli score ... --root data` puts the working folder on sys.path: the
    # sandbox does not bind it (its binds come from the interpreter, not sys.path), so neither it
    # nor the data root and the results folder inside can be seen
    above = (tmp_path / "project").resolve()
    shutil.copytree(built_root, above / "data")
    built_root = above / "data"
    monkeypatch.syspath_prepend(str(above))
    marker = above / f"visible-{secrets.token_hex(4)}.txt"
    marker.write_text("bound")
    out = above / "results"
    out.mkdir()
    (out / "earlier-result.json").write_text("{}")
    folder, logs = hostile(tmp_path, """
labels, results = [], []
for top, dirs, names in os.walk({above!r}):
    labels += [top for n in names if n == "test_labels.npy"]
    results += [n for n in names if n == "earlier-result.json"]
try:
    open(os.path.join({root!r}, "cifar10s-v1", "clean", "test_labels.npy"), "rb").read(1)
    direct = True
except OSError:
    direct = False
report(labels=labels, results=results, direct=direct, marker=os.path.exists({marker!r}))
""", above=str(above), root=str(Path(built_root).resolve()), marker=str(marker))
    try:
        score_submission(folder, built_root, variant="ops", preset="cpu-smoke", seeds=[0], device="cpu",
                         out=out, overrides=dict(QUICK), log=None, sandbox=in_box(box, logs))
    finally:
        marker.unlink()
    seen = reports(logs)
    assert len(seen) >= 3  # inspect, train and evaluate children all looked
    for s in seen:
        assert s["marker"] is False  # the folder on sys.path is not there ...
        assert (s["labels"], s["results"], s["direct"]) == ([], [], False)  # ... nor what it holds


def test_a_hidden_folder_keeps_what_the_child_needs_inside_it(tmp_path, box, monkeypatch):
    # a folder the child reads (bound read-only) holds the data root, and that holds the child's
    # own work folder, as a results folder holds the seeds' work folders in real runs
    from cifar10s.leaderboard.sandbox import bwrap

    readable = bwrap.read_only_paths()
    monkeypatch.setattr(bwrap, "read_only_paths", lambda: [*readable, str(tmp_path.resolve())])
    tmp_path.chmod(0o755)  # readable by the child's host user, as an interpreter's folders are
    (tmp_path / "data" / "secret").mkdir(parents=True)
    (tmp_path / "data" / "secret" / "test_labels.npy").write_text("x")
    scratch = tmp_path / "data" / "work"
    scratch.mkdir()
    listed = box.run(["/usr/bin/find", str(tmp_path / "data")], scratch=scratch,
                     hidden=(tmp_path / "data", tmp_path / "missing")).stdout.split()
    assert str(scratch) in listed and not any("secret" in p for p in listed)
    # not hidden, it would be seen: the bind is real
    assert str(tmp_path / "data" / "secret" / "test_labels.npy") in box.run(
        ["/usr/bin/find", str(tmp_path / "data")], scratch=scratch).stdout.split()


class _FakeHeld:
    """Stands in for a held namespace where only the command line is looked at."""

    pid, userns_fd = 1, 99

    def nsenter(self):
        return ["nsenter", "--net=/proc/1/ns/net", "--"]


def test_a_child_with_the_cuda_binds_starts_where_a_cuda_folder_in_usr_is_a_link(tmp_path, box, monkeypatch):
    # GPU machines ship /usr/local/cuda as a link to /usr/local/cuda-13.0; binding the link again
    # on top of the /usr bind made bubblewrap fail before the child started. Any link in /usr
    # stands in for it here.
    import subprocess

    from cifar10s.leaderboard.sandbox import bwrap

    links = [p for d in ("/usr/lib", "/usr/bin", "/usr/share") if os.path.isdir(d)
             for p in Path(d).iterdir() if p.is_symlink() and p.resolve().exists()]
    if not links:
        pytest.skip("no link under /usr to stand in for /usr/local/cuda")
    monkeypatch.setattr(bwrap, "_CUDA_DIRS", (str(links[0]), *bwrap._CUDA_DIRS))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = box.run(["/bin/ls", str(links[0])], scratch=scratch, cuda=True)
    assert proc.returncode == 0, proc.stderr
    cmd = box.command(["/bin/ls"], scratch=scratch, cuda=True, held=None) if not box.drop_root else \
        box.command(["/bin/ls"], scratch=scratch, cuda=True, held=_FakeHeld())
    binds = {cmd[i + 1] for i, arg in enumerate(cmd[:-1]) if arg.startswith("--") and "bind" in arg}
    assert str(links[0]) not in binds  # seen through the /usr bind alone


def test_a_child_can_ask_its_user_name_without_a_password_database(tmp_path, box):
    # on CUDA, Triton and Inductor name their cache folders after getpass.getuser(); the sandbox
    # binds no /etc/passwd, so without USER/LOGNAME every GPU child failed with a KeyError
    import subprocess
    import sys

    from cifar10s.leaderboard.sandbox.runner import child_env

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code = "import getpass, os; print(getpass.getuser(), os.path.expanduser('~'), os.path.exists('/etc/passwd'))"
    proc = box.run([sys.executable, "-c", code], scratch=scratch, cuda=True, env=child_env(scratch, [], 1))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["nobody", str(scratch), "False"]


# ------------------------------------------------------------------------------------------------
# nothing outlives a child, and the result is the scorer's


DAEMON = """
import subprocess, time
RESULT = {result!r}
MARKER = {marker!r}
loop = ("import os, sys, time\\n"
        "open(os.path.join(sys.argv[2], 'daemon-' + os.urandom(6).hex()), 'w').close()\\n"
        "while True:\\n"
        "    try:\\n"
        "        open(sys.argv[1], 'w').write('{{\\"forged\\": true}}')\\n"
        "    except OSError:\\n"
        "        pass\\n"
        "    time.sleep(0.05)\\n")
BEFORE = os.listdir(LOG)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", loop, RESULT, LOG, MARKER])
    os._exit(0)
t0 = time.time()
while len(os.listdir(LOG)) == len(BEFORE) and time.time() - t0 < 20:  # until the daemon is up
    time.sleep(0.05)
"""


def test_a_double_forked_daemon_dies_with_its_sandbox(tmp_path, box, built_root, one_thread):
    out = tmp_path / "out"
    marker = "cifar10s-daemon-" + secrets.token_hex(6)
    folder, logs = hostile(tmp_path, DAEMON, result=str(out / "attack--ops--cpu-smoke.json"), marker=marker)
    result = score_submission(folder, built_root, variant="ops", preset="cpu-smoke", seeds=[0], device="cpu",
                              out=out, overrides=dict(QUICK), log=None, sandbox=in_box(box, logs))
    path = _written(tmp_path / "out")
    written = path.read_bytes()
    assert len(list(logs.glob("daemon-*"))) >= 3  # a daemon started in every child (inspect, train, evaluate)
    assert processes_with(marker) == []  # ... and none is left
    time.sleep(1.0)
    assert path.read_bytes() == written and json.loads(written)["sandbox"]["tool"] == "bubblewrap"
    assert processes_with(marker) == []


def test_a_hanging_child_is_killed_with_its_whole_namespace(tmp_path, box):
    marker = "cifar10s-hang-" + secrets.token_hex(6)
    folder, logs = hostile(tmp_path, DAEMON + "\ntime.sleep(600)\n", result=str(tmp_path / "nothing"), marker=marker)
    t0 = time.monotonic()
    with pytest.raises(WorkerFailed, match="time limit of 30 s"):
        validate_submission(folder, time_limit_s=30, sandbox=in_box(box, logs))
    assert time.monotonic() - t0 < 60
    assert list(logs.glob("daemon-*")) and processes_with(marker) == []


def test_a_namespace_report_is_believed_only_for_bubblewraps_own_child():
    from cifar10s.leaderboard.sandbox.namespace import read_namespace, wait_namespace_empty

    r, w = os.pipe()  # bubblewrap that dies before reporting: its end closes, nothing is waited for
    os.close(w)
    t0 = time.monotonic()
    assert read_namespace(r, os.getpid(), timeout_s=30) is None and time.monotonic() - t0 < 5
    os.close(r)
    r, w = os.pipe()  # a report naming a process that is not the reporter's child is ignored
    os.write(w, json.dumps({"child-pid": os.getpid()}).encode())
    os.close(w)
    assert read_namespace(r, os.getpid(), timeout_s=5) is None
    os.close(r)
    assert wait_namespace_empty(None)


def test_a_zombie_does_not_hold_a_namespace_open():
    # the namespace's init, orphaned when bubblewrap exits, stays a zombie until the host's init
    # reaps it (1.6-1.8 s here): waiting for it cost every sandboxed child that long
    import subprocess

    from cifar10s.leaderboard.sandbox.namespace import Namespace, _members

    ours = Namespace(os.getpid(), os.readlink("/proc/self/ns/pid"))
    proc = subprocess.Popen(["/bin/true"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{proc.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    members = _members(ours)
    assert os.getpid() in members and proc.pid not in members
    proc.wait()


def test_each_child_gets_a_fresh_copy_checked_against_the_hashes(tmp_path):
    folder = write_submission(tmp_path / "sub", {**META, "entry": "m.py"}, {"m.py": TINY_NET, "util/a.py": "x = 1\n"})
    sub = load_submission(folder)
    staged = stage_files(sub, tmp_path / "staged")
    verify_staged(sub, staged)
    (staged / "util" / "a.py").write_text("x = 2\n")  # what a leftover process of an earlier child would do
    with pytest.raises(WorkerFailed, match="does not match the submission's hashes"):
        verify_staged(sub, staged)
    (staged / "util" / "a.py").write_text("x = 1\n")
    (staged / "extra.py").write_text("")
    with pytest.raises(WorkerFailed, match="does not match"):
        verify_staged(sub, staged)


# ------------------------------------------------------------------------------------------------
# nothing outside the scratch folder can be written


def test_writes_outside_the_scratch_folder_fail_and_leave_nothing(tmp_path, box, built_root):
    import torch

    name = "planted-" + secrets.token_hex(6)
    site = Path(torch.__file__).resolve().parents[1]
    package = Path(__file__).resolve().parents[1] / "cifar10s"
    results = tmp_path / "results"
    results.mkdir()
    targets = {"site": site / f"{name}.pth", "package": package / f"{name}.py", "tmp": Path("/tmp") / name,
               "results": results / f"{name}.json", "data": Path(built_root) / f"{name}.txt",
               "home": Path.home() / name}
    folder, logs = hostile(tmp_path, """
done, refused = [], {{}}
for key, path in {targets!r}.items():
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("import os; os.system('echo planted')\\n")
        done.append(key)
    except OSError as e:
        refused[key] = e.strerror
report(done=done, refused=refused, home=os.environ.get("HOME"))
""", targets={k: str(v) for k, v in targets.items()})
    validate_submission(folder, check_model=False, sandbox=in_box(box, logs))
    (seen,) = reports(logs)
    # the interpreter's folders and the package are read-only; the rest are not there at all, so
    # what "succeeded" went to the sandbox's own in-memory root, gone with it
    assert {"site", "package"} <= set(seen["refused"]) and set(seen["refused"]) | set(seen["done"]) == set(targets)
    assert all("read-only" in seen["refused"][k].lower() for k in ("site", "package"))
    assert [str(p) for p in targets.values() if p.exists()] == []


def test_limits_are_set_before_submission_code_and_cannot_be_raised(tmp_path, box):
    limits = Limits(address_space=6 << 30, file_size=1 << 20, open_files=256, processes=4096)
    folder, logs = hostile(tmp_path, """
import resource
got = {{k: resource.getrlimit(getattr(resource, k)) for k in ("RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE",
                                                              "RLIMIT_NPROC", "RLIMIT_CPU")}}
try:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    raised = True
except (ValueError, OSError):
    raised = False
try:
    big = bytearray(8 << 30); alloc = True
except MemoryError:
    alloc = False
import signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
try:
    with open("big.bin", "wb") as f:
        f.write(b"x" * (2 << 20))
    wrote = True
except OSError:
    wrote = False
report(got=got, raised=raised, alloc=alloc, wrote=wrote)
""")
    validate_submission(folder, check_model=False, time_limit_s=100,
                        sandbox=dataclasses.replace(in_box(box, logs), limits=limits))
    (seen,) = reports(logs)
    assert seen["got"]["RLIMIT_AS"] == [6 << 30] * 2 and seen["got"]["RLIMIT_FSIZE"] == [1 << 20] * 2
    assert seen["got"]["RLIMIT_NOFILE"] == [256] * 2 and seen["got"]["RLIMIT_NPROC"] == [4096] * 2
    assert seen["got"]["RLIMIT_CPU"][1] == int(100 * limits.cpu_per_wall_second) + 60
    assert seen["raised"] is False and seen["alloc"] is False and seen["wrote"] is False


# ------------------------------------------------------------------------------------------------
# text from children is inert


def test_inert_text_strips_escapes_and_control_characters():
    raw = ("ok\x1b[2J\x1b[1;1Hred\x1b[31m!\x1b]0;title\x07 \x1b]8;;http://x\x1b\\link\x1bP+q\x1b\\"
           "\x07bell\x08\x00nul\rcr\x9b31m\x85c1\x7fdel\ttab\nline é")
    out = inert_text(raw)
    assert out == "okred! linkbellnulcr31mc1del\ttab\nline é"
    assert not any(ord(c) < 32 and c not in "\n\t" or 0x7f <= ord(c) <= 0x9f for c in out)
    assert inert_text("a\rb\x1b[Kc", keep_cr=True) == "a\rbc"
    assert inert_text("\x1b[31") == "" and inert_text("tail\x1b") == "tail"


def test_child_text_reaches_the_scorer_inert_and_its_log_is_read_from_the_end(tmp_path, box, capfd):
    folder, logs = hostile(tmp_path, """
chunk = ("\\x1b[2J\\x1b]0;pwned\\x07" + "A" * 1000 + "\\n").encode()
for _ in range(300 * 1024):  # 300 MiB of log
    os.write(1, chunk[:1024])
os.write(1, b"\\x1b[31mthe end\\x9b\\n")
report(done=True)
os._exit(0)
""")
    tracemalloc.start()
    try:
        with pytest.raises(WorkerFailed) as err:
            validate_submission(folder, check_model=False, sandbox=in_box(box, logs))
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(err.value)
    assert "without writing its report" in message and "the end" in message
    assert "\x1b" not in message and "\x07" not in message and "\x9b" not in message
    assert peak < 64 * TAIL_BYTES  # 4 MiB: the 300 MiB log was never read whole
    assert reports(logs) == [{"done": True}]
    log = tmp_path / "big.log"
    with open(log, "wb") as f:
        f.truncate(300 << 20)
        f.seek(-5, os.SEEK_END)
        f.write(b"\x1b[0mend")
    fd = os.open(log, os.O_RDONLY)
    try:
        assert read_tail(fd).endswith("end") and len(read_tail(fd)) <= TAIL_BYTES
    finally:
        os.close(fd)

    bad = write_submission(tmp_path / "raise", {**META, "entry": "m.py"},
                           {"m.py": "raise ValueError('\\x1b[2J\\x1b]0;pwned\\x07 cleared \\x9b your screen')\n"})
    with pytest.raises(SubmissionError) as err2:
        validate_submission(bad, sandbox=box)
    assert "cleared" in str(err2.value) and not any(c in str(err2.value) for c in "\x1b\x07\x9b")
    captured = capfd.readouterr()
    assert "pwned" not in captured.out + captured.err


def test_the_child_cannot_write_to_the_scorers_terminal(tmp_path, box, capfd):
    folder, logs = hostile(tmp_path, """
import fcntl, termios
marker = "TERMINAL-" + TOKEN
tried = {{}}
for fd in (0, 1, 2):
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b"x"); tried[f"tiocsti{{fd}}"] = "ok"
    except OSError as e:
        tried[f"tiocsti{{fd}}"] = e.strerror
for path in ("/dev/tty", f"/proc/{{os.getppid()}}/fd/1", f"/proc/{{os.getppid()}}/fd/2"):
    try:
        with open(path, "w") as f:
            f.write(marker + "\\n"); tried[path] = "ok"
    except OSError as e:
        tried[path] = e.strerror
report(marker=marker, tried=tried)
""")
    validate_submission(folder, check_model=False, sandbox=in_box(box, logs))
    (seen,) = reports(logs)
    assert not [k for k, v in seen["tried"].items() if k.startswith("tiocsti") and v == "ok"]
    assert seen["tried"]["/dev/tty"] != "ok"
    captured = capfd.readouterr()
    assert seen["marker"] not in captured.out + captured.err


# ------------------------------------------------------------------------------------------------
# no sandbox, no run; --no-sandbox is recorded; an honest score does not change


def test_no_bubblewrap_stops_with_how_to_install_it(tmp_path, capsys, monkeypatch):
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        detect(str(tmp_path / "no-such-bwrap"))
    folder = write_submission(tmp_path / "sub", {**META, "entry": "m.py"}, {"m.py": TINY_NET})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert lb_main(["validate", str(folder)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt-get install bubblewrap" in err and "--no-sandbox" in err


def test_an_honest_submission_scores_the_same_with_and_without_the_sandbox(tmp_path, box, built_root, one_thread):
    folder = write_submission(tmp_path / "honest", {**META, "entry": "m.py"}, {"m.py": TINY_NET})
    boxed = score_submission(folder, built_root, variant="ops", preset="cpu-smoke", seeds=[0], device="cpu",
                             out=tmp_path / "boxed", overrides=dict(QUICK), log=None, sandbox=box)
    rc = lb_main(["score", str(folder), "--root", str(built_root), "--variant", "ops", "--preset", "cpu-smoke",
                  "--device", "cpu", "--out", str(tmp_path / "plain"), "--quiet", "--no-sandbox",
                  *[a for k, v in QUICK.items() for a in ("--set", f"{k}={v}")]])
    assert rc == 0
    (path,) = (tmp_path / "plain").glob("*.json")
    plain = json.loads(path.read_text())
    assert plain["sandbox"] == "none"
    assert boxed["sandbox"]["tool"] == "bubblewrap" and "pid" in boxed["sandbox"]["namespaces"]
    assert boxed["sandbox"]["uid"] == 65534 or "user" not in boxed["sandbox"]["namespaces"]
    a, b = boxed["per_seed"][0], plain["per_seed"][0]
    assert a["final_test_acc"] == b["final_test_acc"] and a["flipped_test_acc"] == b["flipped_test_acc"]
    assert a["weights_sha256"] == b["weights_sha256"]
    assert [r["test_acc"] for r in a["records"]] == [r["test_acc"] for r in b["records"]]


def _written(out: Path) -> Path:
    """The one result file a scoring run wrote into ``out`` (the returned record carries no path)."""
    (path,) = sorted(out.glob("*.json"))
    return path
