"""Hub releases: a real publish -> fetch round trip through huggingface_hub, against a fake Hub on 127.0.0.1.

Nothing here leaves 127.0.0.1 (a guard refuses any other address). huggingface_hub reads most
of its environment variables once, at import (``huggingface_hub.constants``), so each setting is
changed both in the environment and, with monkeypatch, in ``huggingface_hub.constants``:

- ``HF_HUB_DISABLE_XET``: the installed huggingface_hub uploads every LFS-mode file through Xet
  whenever ``hf_xet`` is importable; Xet needs a CAS server the fake Hub does not implement, so the
  tests disable it, which makes uploads use the Git-LFS batch API (basic transfer).
- ``HF_HUB_OFFLINE``: ``constants.HF_HUB_OFFLINE`` (what huggingface_hub's request hook checks);
  cifar10s.hub.client also reads the variable at call time.
- ``HF_TOKEN`` / token file, ``HF_HOME`` / ``HF_HUB_CACHE``: pointed into tmp dirs so the user's
  token and cache are never read or touched; every fetch gets its own ``cache_dir``.
- ``HF_HUB_ETAG_TIMEOUT``: read at call time by cifar10s.hub.client for its first (no-retry) request.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_cifar_archive
from fake_hub import BlackHole, FakeHub, refused_port
from huggingface_hub import HfApi, constants

from cifar10s import CIFAR10S
from cifar10s.hub.client import (
    DEFAULT_REPO_ID,
    DEFAULT_REVISION,
    HubUnavailable,
    dataset_card,
    fetch_variant,
    publish_release,
)
from cifar10s.store import IntegrityError, data_dir, verify_folder

REPO = "cifar10s/CIFAR-10-S-test"
TOKEN = "hf_fake_write_token"
VARIANTS = ("clean", "ops-k1")
_LOCAL = {"127.0.0.1", "localhost", "::1"}
# huggingface_hub's own LFS upload (data=<file>) triggers this httpx2 deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


# ------------------------------------------------------------------------------------ isolation


@pytest.fixture(scope="module", autouse=True)
def _isolated_hf(tmp_path_factory):
    """No user token/cache, no Xet, no offline flag, and no connection beyond 127.0.0.1."""
    home = tmp_path_factory.mktemp("hf-home")
    mp = pytest.MonkeyPatch()
    for var in ("HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                "HF_HOME", "HF_HUB_CACHE", "HF_OIDC_RESOURCE", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT",
                "HUGGINGFACE_CO_STAGING"):
        mp.delenv(var, raising=False)
    mp.setenv("HF_HUB_DISABLE_XET", "1")
    mp.setattr(constants, "HF_HUB_DISABLE_XET", True, raising=False)
    mp.setattr(constants, "HF_HUB_OFFLINE", False)
    mp.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    mp.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"), raising=False)
    mp.setattr(constants, "HF_HUB_CACHE", str(home / "default-cache"))

    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if host not in _LOCAL:
            raise OSError(f"test guard: refusing to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in _LOCAL:
            raise OSError(f"test guard: refusing to connect to {address!r}")
        return real_connect(self, address)

    mp.setattr(socket, "getaddrinfo", getaddrinfo)
    mp.setattr(socket.socket, "connect", connect)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def hub():
    fake = FakeHub()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def release(hub, built) -> str:
    """clean + ops-k1 published to the fake Hub and tagged v1; returns the commit sha."""
    return publish_release(built, VARIANTS, REPO, tag="v1", token=TOKEN, endpoint=hub.url)


def _fetch(root, hub, cache, **kwargs):
    kwargs.setdefault("endpoint", hub.url)
    return fetch_variant(root, "ops", repo_id=REPO, revision="v1", cache_dir=cache, progress=False, **kwargs)


def _same_files(a: Path, b: Path) -> None:
    names = json.loads((a / "manifest.json").read_text())["files"]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ------------------------------------------------------------------------------------ tests


def test_defaults_name_the_official_release():
    assert DEFAULT_REPO_ID.count("/") == 1 and DEFAULT_REVISION


def test_publish_then_fetch_round_trip(hub, built, release, tmp_path):
    # What went up: the LFS path (batch + PUT to the CDN + verify) for arrays, inline for JSON/README.
    methods = {(s, m, p.split("/")[1]) for s, m, p in hub.requests}
    assert ("cdn", "PUT", "upload") in methods
    assert not any("xet" in p for _, _, p in hub.requests)
    tree = hub.tree(REPO, "v1")
    for v in VARIANTS:
        assert tree[f"{v}/train_images.npy"].lfs_oid is not None
        assert tree[f"{v}/manifest.json"].content is not None
    card = hub.content(REPO, "README.md", "v1").decode()
    assert card.startswith("---\n") and "pretty_name: CIFAR-10-S" in card
    assert "One-Pixel Shortcut" in card and "huang2021unlearnable" in card and "krizhevsky2009learning" in card
    assert "Not built from the official CIFAR-10" in card  # the tiny archive is random data
    uploaded = json.loads(hub.content(REPO, "ops-k1/manifest.json", "v1"))
    assert uploaded["source"]["origin"] == "tiny-cifar.tar.gz"  # no local path of the publisher

    fresh = tmp_path / "fresh"
    folder = _fetch(fresh, hub, tmp_path / "cache")
    assert folder == data_dir(fresh) / "ops-k1"
    for v in VARIANTS:  # clean came along (the test split lives there)
        verify_folder(data_dir(fresh) / v)
        _same_files(data_dir(built) / v, data_dir(fresh) / v)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["fetched_from"]["commit"] == release
    assert not [p for p in data_dir(fresh).iterdir() if p.name.startswith(".staging")]

    train = CIFAR10S(fresh, variant="ops")
    test = CIFAR10S(fresh, train=False, variant="ops")
    assert np.array_equal(train.data, np.load(data_dir(built) / "ops-k1" / "train_images.npy"))
    assert len(train) == 100 and len(test) == 20

    # Fetching again: only manifests are looked at, no file is downloaded or reinstalled.
    before = hub.count("cdn")
    mtime = (folder / "train_images.npy").stat().st_mtime_ns
    fetch_variant(fresh, "ops-k1", repo_id=REPO, revision=release, endpoint=hub.url,
                  cache_dir=tmp_path / "cache", progress=False)
    assert hub.count("cdn") == before
    assert (folder / "train_images.npy").stat().st_mtime_ns == mtime


def test_republishing_is_a_no_op_and_tags_never_move(hub, built, release):
    assert publish_release(built, VARIANTS, REPO, tag="v1", token=TOKEN, endpoint=hub.url) == release
    initial = next(iter(hub.repo(REPO).commits))  # the repo's first commit (.gitattributes only)
    HfApi(endpoint=hub.url, token=TOKEN).create_tag(REPO, tag="v0", revision=initial, repo_type="dataset")
    with pytest.raises(ValueError, match="never moved"):
        publish_release(built, VARIANTS, REPO, tag="v0", token=TOKEN, endpoint=hub.url)
    with pytest.raises(ValueError, match="clean"):
        publish_release(built, ["ops"], REPO, token=TOKEN, endpoint=hub.url)


def test_publish_refuses_a_corrupt_local_folder(hub, tmp_path, built):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(data_dir(built), data_dir(root))
    with open(data_dir(root) / "ops-k1" / "train_labels.npy", "r+b") as f:
        f.seek(-1, 2)
        f.write(b"\x07")
    before = len(hub.requests)
    with pytest.raises(IntegrityError, match="train_labels.npy"):
        publish_release(root, VARIANTS, "cifar10s/never", token=TOKEN, endpoint=hub.url)
    assert len(hub.requests) == before


def test_corrupt_file_on_the_hub_is_refused_and_nothing_installed(hub, release, tmp_path):
    undo = hub.corrupt(REPO, "ops-k1/train_images.npy", "v1")
    try:
        with pytest.raises(IntegrityError, match="ops-k1/train_images.npy"):
            _fetch(tmp_path / "root", hub, tmp_path / "cache")
    finally:
        undo()
    d = data_dir(tmp_path / "root")
    assert not (d / "ops-k1").exists() and not (d / "clean").exists()
    # The bad copy was dropped from the HF cache: a retry downloads it again and succeeds.
    _fetch(tmp_path / "root", hub, tmp_path / "cache")
    verify_folder(d / "ops-k1")


def test_missing_file_revision_or_repo_is_hub_unavailable(hub, built, tmp_path):
    repo = "cifar10s/incomplete"
    publish_release(built, VARIANTS, repo, tag="v1", token=TOKEN, endpoint=hub.url)
    hub.delete_file(repo, "ops-k1/train_labels.npy", "v1")
    root = tmp_path / "root"
    with pytest.raises(HubUnavailable, match="cifar10s build --variant ops"):
        fetch_variant(root, "ops", repo_id=repo, revision="v1", endpoint=hub.url, cache_dir=tmp_path / "c",
                      progress=False)
    assert not (data_dir(root) / "ops-k1").exists() and not (data_dir(root) / "clean").exists()
    with pytest.raises(HubUnavailable, match="revision 'v404' does not exist"):
        fetch_variant(root, "ops", repo_id=repo, revision="v404", endpoint=hub.url, cache_dir=tmp_path / "c")
    with pytest.raises(HubUnavailable, match="repository not found"):
        fetch_variant(root, "ops", repo_id="cifar10s/nope", endpoint=hub.url, cache_dir=tmp_path / "c")
    with pytest.raises(HubUnavailable, match="ops-k7/manifest.json is not in this release"):
        fetch_variant(root, "ops-k7", repo_id=repo, revision="v1", endpoint=hub.url, cache_dir=tmp_path / "c")


def test_offline_with_an_empty_cache(hub, release, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    before = len(hub.requests)
    with pytest.raises(HubUnavailable, match="offline mode"):
        _fetch(tmp_path / "root", hub, tmp_path / "cache")
    assert len(hub.requests) == before


def test_offline_with_a_warm_cache_sends_no_request(hub, release, tmp_path, monkeypatch):
    _fetch(tmp_path / "first", hub, tmp_path / "cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    before = len(hub.requests)
    folder = _fetch(tmp_path / "second", hub, tmp_path / "cache")
    assert len(hub.requests) == before
    for v in VARIANTS:
        _same_files(data_dir(tmp_path / "first") / v, data_dir(tmp_path / "second") / v)
    assert json.loads((folder / "manifest.json").read_text())["fetched_from"]["commit"] == release
    CIFAR10S(tmp_path / "second", variant="ops")


def test_hf_endpoint_and_hf_home_from_the_environment(hub, release, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    folder = fetch_variant(tmp_path / "root", "ops", repo_id=REPO, revision="v1", progress=False)
    assert json.loads((folder / "manifest.json").read_text())["fetched_from"]["endpoint"] == hub.url
    assert (tmp_path / "hf-home" / "hub" / f"datasets--{REPO.replace('/', '--')}").is_dir()
    # An explicit endpoint wins over HF_ENDPOINT.
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{refused_port()}")
    _fetch(tmp_path / "root2", hub, tmp_path / "cache", endpoint=hub.url)


def test_hub_down_fails_fast(tmp_path, monkeypatch):
    t0 = time.monotonic()
    with pytest.raises(HubUnavailable, match="could not be reached"):
        fetch_variant(tmp_path / "a", "ops", repo_id=REPO, endpoint=f"http://127.0.0.1:{refused_port()}",
                      cache_dir=tmp_path / "cache", progress=False)
    assert time.monotonic() - t0 < 5
    hole = BlackHole()  # accepts connections, never answers
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    try:
        t0 = time.monotonic()
        with pytest.raises(HubUnavailable, match="could not be reached"):
            fetch_variant(tmp_path / "b", "ops", repo_id=REPO, endpoint=hole.url, cache_dir=tmp_path / "cache",
                          progress=False)
        assert time.monotonic() - t0 < 5
    finally:
        hole.close()
    assert not (data_dir(tmp_path / "a") / "clean").exists()


def test_hub_down_with_a_warm_cache_uses_the_cache(hub, release, tmp_path):
    _fetch(tmp_path / "first", hub, tmp_path / "cache")
    folder = _fetch(tmp_path / "second", hub, tmp_path / "cache", endpoint=f"http://127.0.0.1:{refused_port()}")
    _same_files(data_dir(tmp_path / "first") / "ops-k1", folder)


def test_dataset_card_front_matter_and_warning(built):
    manifests = {v: verify_folder(data_dir(built) / v, check_hashes=False) for v in VARIANTS}
    card = dataset_card(manifests)
    front = card.split("---\n")[1]
    assert "license:" in front and "- image-classification" in front and "- n<1K" in front
    assert "> [!WARNING]" in card and "test split is clean CIFAR-10" in card
    for v in VARIANTS:
        for name, entry in manifests[v]["files"].items():
            assert entry["sha256"] in card
    official = {v: {**m, "source": {**m["source"], "official": True, "num_train": 50000, "num_test": 10000}}
                for v, m in manifests.items()}
    card = dataset_card(official)
    assert "[!WARNING]" not in card and "- 10K<n<100K" in card
    assert "@inproceedings{wu2023onepixel" in card


# ------------------------------------------------------------------ CIFAR10S(download=True)


def test_dataset_download_fetches_the_pinned_release(hub, built, tmp_path, monkeypatch):
    publish_release(built, VARIANTS, DEFAULT_REPO_ID, tag=DEFAULT_REVISION, token=TOKEN, endpoint=hub.url)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    fresh = tmp_path / "fresh"
    train = CIFAR10S(fresh, variant="ops", download=True)  # no CIFAR-10 anywhere: must come from the Hub
    test = CIFAR10S(fresh, train=False, download=True)
    _same_files(data_dir(built) / "ops-k1", data_dir(fresh) / "ops-k1")
    assert len(train) == 100 and len(test) == 20
    assert train.manifest["fetched_from"]["repo_id"] == DEFAULT_REPO_ID


def test_dataset_download_falls_back_to_local_build_when_hub_is_down(tmp_path, monkeypatch, caplog):
    """No local copy: the Hub is tried; when it is down, one short line, then the local build."""
    import cifar10s.dataset as dataset_module

    endpoint = f"http://127.0.0.1:{refused_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    archive = make_cifar_archive(tmp_path / "elsewhere.tar.gz")
    real_build = dataset_module.build_variant
    # stands in for the official download the local build would otherwise start
    monkeypatch.setattr(dataset_module, "build_variant",
                        lambda root, spec, **kw: real_build(root, spec, **{**kw, "cifar10": archive, "download": False}))
    root = tmp_path / "root"
    with pytest.warns(UserWarning) as record:
        ds = CIFAR10S(root, variant="ops", download=True)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1 and "\n" not in messages[0] and len(messages[0]) < 300
    assert f"of {DEFAULT_REPO_ID}@{DEFAULT_REVISION} from {endpoint}: the Hub could not be reached" in messages[0]
    assert messages[0].endswith("; building ops-k1 locally instead")
    # and no log record a console would print beside it (logging shows WARNING and above by default)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert len(ds) == 100 and "fetched_from" not in ds.manifest


def test_dataset_download_skips_the_hub_when_a_local_copy_builds_in_seconds(tmp_path, monkeypatch):
    import warnings

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{refused_port()}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    make_cifar_archive(tmp_path / "cifar-10-python.tar.gz")  # a local copy under root; ops needs no EM
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = CIFAR10S(tmp_path, variant="ops", download=True)
    assert len(ds) == 100 and "fetched_from" not in ds.manifest


def test_publish_and_fetch_commands(hub, built, tmp_path, monkeypatch, capsys):
    from cifar10s.cli.main import main

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert main(["publish", "--root", str(built), "--repo-id", "cifar10s/cli-test", "--variants", "clean",
                 "ops-k1", "--tag", "v1", "--endpoint", hub.url]) == 0
    assert "published clean, ops-k1 to cifar10s/cli-test at commit" in capsys.readouterr().out
    fresh = tmp_path / "fresh"
    assert main(["fetch", "--root", str(fresh), "--variant", "ops", "--repo-id", "cifar10s/cli-test",
                 "--revision", "v1", "--endpoint", hub.url, "--quiet"]) == 0
    _same_files(data_dir(built) / "ops-k1", data_dir(fresh) / "ops-k1")
    assert main(["fetch", "--root", str(fresh), "--variant", "em", "--repo-id", "cifar10s/cli-test",
                 "--revision", "v1", "--endpoint", hub.url, "--quiet"]) == 1
    assert "error:" in capsys.readouterr().err
