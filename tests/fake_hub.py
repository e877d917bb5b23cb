"""A small, in-memory stand-in for the Hugging Face Hub, served on 127.0.0.1 only.

It answers the endpoints that ``huggingface_hub`` (2.x, httpx2-based; also the 0.2x/1.x layouts of
the same routes) calls for creating a dataset repo, committing files (regular files inline and
large/binary ones through the Git-LFS batch API, "basic" single-PUT transfer), tagging, reading
repo info and downloading files. Two servers run: the *hub* and a *CDN* on another port (another
origin, like the real LFS storage), so that the 302 redirect of ``/resolve`` for LFS files is
handled exactly as against huggingface.co: the client stops at the redirect, reads
``X-Linked-Etag`` / ``X-Linked-Size`` / ``X-Repo-Commit`` from it and downloads from ``Location``
without the auth header. The tree and paths-info listings are what ``HfFileSystem`` (hence
``datasets.load_dataset``) uses to resolve a card's ``data_files``.

Routes (``{rt}`` = ``datasets/`` | ``spaces/`` | empty for models; ``{type}`` = dataset|model|space):

- ``POST /api/repos/create``                                   create a repo (409 if it exists)
- ``POST /api/validate-yaml``                                   README front matter check
- ``POST /api/{type}s/{ns}/{name}/preupload/{rev}``              upload mode per file (lfs|regular)
- ``POST /{rt}{ns}/{name}.git/info/lfs/objects/batch``           LFS batch: upload + verify actions
- ``PUT  CDN/upload/{oid}``                                      LFS object upload (sha256-checked)
- ``POST /{rt}{ns}/{name}.git/info/lfs/objects/verify``          LFS verify
- ``POST /api/{type}s/{ns}/{name}/commit/{rev}``                 ndjson commit (file / lfsFile / deleted*)
- ``POST /api/{type}s/{ns}/{name}/tag/{rev}``                    create tag (409 if it exists)
- ``GET  /api/{type}s/{ns}/{name}[/revision/{rev}]``             repo info (sha, siblings)
- ``GET  /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]``          folder listing (``recursive``, ``expand``)
- ``POST /api/{type}s/{ns}/{name}/paths-info/{rev}``              files/folders by path (form ``paths``)
- ``HEAD|GET /{rt}{ns}/{name}/resolve/{rev}/{path}``             file: 200 (regular) or 302 to CDN (LFS)
- ``HEAD|GET CDN/lfs/{oid}``                                     LFS object content

Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) like the real Hub.
Xet is not implemented: clients must run with ``HF_HUB_DISABLE_XET=1`` to upload (downloads never
see Xet headers, so they use plain HTTP). Every request is recorded in :attr:`FakeHub.requests`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".npy", ".npz", ".bin", ".pt", ".pth", ".safetensors", ".parquet", ".arrow", ".zip", ".gz", ".tar")
LFS_THRESHOLD = 10 * 1024 * 1024
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


@dataclass
class Entry:
    size: int
    content: bytes | None = None  # regular file
    lfs_oid: str | None = None  # LFS file (content in FakeHub.lfs)

    @property
    def oid(self) -> str:  # what preupload reports, as huggingface_hub's _local_oid computes it
        return self.lfs_oid if self.lfs_oid else git_blob_sha1(self.content or b"")


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, dict[str, Entry]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> str | None:
        rev = unquote(rev)
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        if _COMMIT_RE.fullmatch(rev) and rev in self.commits:
            return rev
        return None


class _Reply(Exception):
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _error(status: int, code: str | None, message: str, headers: dict[str, str] | None = None) -> _Reply:
    h = {"X-Error-Message": message, **(headers or {})}
    if code:
        h["X-Error-Code"] = code
    return _Reply(status, {"error": message}, h)


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str]] = []  # (server, method, path)
        self.lock = threading.RLock()
        self._counter = 0
        self._hub = self._serve("hub")
        self._cdn = self._serve("cdn")
        self.url = f"http://127.0.0.1:{self._hub.server_address[1]}"
        self.cdn_url = f"http://127.0.0.1:{self._cdn.server_address[1]}"

    # ----------------------------------------------------------------------------- plumbing
    def _serve(self, which: str) -> ThreadingHTTPServer:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self, method: str) -> None:
                url = urlsplit(self.path)
                path, query = url.path, parse_qs(url.query)
                with hub.lock:
                    hub.requests.append((which, method, path))
                body = self._body() if method in ("POST", "PUT") else b""
                try:
                    if which == "hub":
                        hub._route_hub(method, path, body, dict(self.headers.items()), query)
                    else:
                        hub._route_cdn(method, path, body, dict(self.headers.items()))
                    raise _Reply(404, {"error": f"no route {method} {path}"})
                except _Reply as reply:
                    self._send(method, reply)

            def _send(self, method: str, reply: _Reply) -> None:
                raw = reply.body
                headers = dict(reply.headers)
                if isinstance(raw, (dict, list)):
                    raw = json.dumps(raw).encode()
                    headers.setdefault("Content-Type", "application/json")
                raw = raw or b""
                self.send_response(reply.status)
                headers.setdefault("Content-Length", str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(raw)

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_HEAD(self) -> None:  # noqa: N802
                self._handle("HEAD")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._handle("PUT")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name=f"fake-hub-{which}", daemon=True).start()
        return server

    def close(self) -> None:
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    def count(self, server: str | None = None, method: str | None = None) -> int:
        with self.lock:
            return sum(1 for s, m, _ in self.requests if (server in (None, s)) and (method in (None, m)))

    def _new_sha(self) -> str:
        self._counter += 1
        return hashlib.sha1(f"commit-{self._counter}-{time.time_ns()}".encode()).hexdigest()

    # ----------------------------------------------------------------------------- test helpers
    def repo(self, repo_id: str, repo_type: str = "dataset") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def tree(self, repo_id: str, rev: str = "main", repo_type: str = "dataset") -> dict[str, Entry]:
        repo = self.repo(repo_id, repo_type)
        sha = repo.resolve(rev)
        assert sha is not None, rev
        return repo.commits[sha]

    def content(self, repo_id: str, path: str, rev: str = "main", repo_type: str = "dataset") -> bytes:
        entry = self.tree(repo_id, rev, repo_type)[path]
        return entry.content if entry.content is not None else self.lfs[entry.lfs_oid or ""]

    def corrupt(self, repo_id: str, path: str, rev: str = "main", repo_type: str = "dataset") -> Callable[[], None]:
        """Flip one byte of a stored file (same size, same advertised hash); returns an undo function."""
        entry = self.tree(repo_id, rev, repo_type)[path]
        with self.lock:
            if entry.lfs_oid:
                good = self.lfs[entry.lfs_oid]
                bad = bytearray(good)
                bad[-1] ^= 0xFF
                self.lfs[entry.lfs_oid] = bytes(bad)

                def undo() -> None:
                    self.lfs[entry.lfs_oid or ""] = good
            else:
                good = entry.content or b""
                bad = bytearray(good)
                bad[-1] ^= 0xFF
                entry.content = bytes(bad)

                def undo() -> None:
                    entry.content = good
        return undo

    def delete_file(self, repo_id: str, path: str, rev: str = "main", repo_type: str = "dataset") -> None:
        """Remove a file from a commit in place (simulates an incomplete release)."""
        with self.lock:
            del self.tree(repo_id, rev, repo_type)[path]

    # ----------------------------------------------------------------------------- helpers
    def _auth(self, headers: dict[str, str]) -> None:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if not auth.startswith("Bearer hf_"):
            raise _error(401, None, "Invalid credentials in Authorization header")

    def _get_repo(self, repo_type: str, repo_id: str, headers: dict[str, str]) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise _error(404, "RepoNotFound", "Repository not found")
        if repo.private:
            auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
            if not auth.startswith("Bearer hf_"):
                raise _error(401, "RepoNotFound", "Repository not found")
        return repo

    def _rev(self, repo: Repo, rev: str) -> str:
        sha = repo.resolve(rev)
        if sha is None:
            raise _error(404, "RevisionNotFound", f"Invalid rev id: {unquote(rev)}")
        return sha

    @staticmethod
    def _type_from_api(plural: str) -> str:
        return {"datasets": "dataset", "models": "model", "spaces": "space"}[plural]

    @staticmethod
    def _split_prefixed(path: str) -> tuple[str, str, str] | None:
        """``/datasets/ns/name/<rest>`` -> (type, repo_id, rest); models have no prefix."""
        m = re.fullmatch(r"/(?:(datasets|spaces)/)?([^/]+)/([^/]+?)(\.git)?/(.+)", path)
        if not m:
            return None
        repo_type = {"datasets": "dataset", "spaces": "space", None: "model"}[m.group(1)]
        return repo_type, f"{m.group(2)}/{m.group(3)}", m.group(5)

    # ----------------------------------------------------------------------------- hub routes
    def _route_hub(
        self, method: str, path: str, body: bytes, headers: dict[str, str], query: dict[str, list[str]]
    ) -> None:
        with self.lock:
            if method == "POST" and path == "/api/repos/create":
                self._create_repo(json.loads(body or b"{}"), headers)
            if method == "POST" and path == "/api/validate-yaml":
                self._validate_yaml(json.loads(body or b"{}"))
            m = re.fullmatch(
                r"/api/(datasets|models|spaces)/([^/]+/[^/]+)(?:/(preupload|commit|tag|revision|tree|paths-info)/(.+))?",
                path,
            )
            if m:
                repo_type, repo_id, action, rev = self._type_from_api(m.group(1)), m.group(2), m.group(3), m.group(4)
                repo = self._get_repo(repo_type, repo_id, headers)
                if method == "GET" and action in (None, "revision"):
                    self._repo_info(repo, rev or "main")
                if method == "GET" and action == "tree":
                    rev, _, folder = rev.partition("/")
                    self._tree(repo, rev, unquote(folder).strip("/"), _flag(query, "recursive"),
                               _flag(query, "expand"))
                if method == "POST" and action == "paths-info":
                    form = parse_qs(body.decode())
                    self._paths_info(repo, rev, form.get("paths", []), _flag(form, "expand"))
                if method == "POST" and action == "preupload":
                    self._auth(headers)
                    self._preupload(repo, rev, json.loads(body))
                if method == "POST" and action == "commit":
                    self._auth(headers)
                    self._commit(repo, rev, body)
                if method == "POST" and action == "tag":
                    self._auth(headers)
                    self._tag(repo, rev, json.loads(body))
            split = self._split_prefixed(path)
            if split:
                repo_type, repo_id, rest = split
                if method == "POST" and rest in ("info/lfs/objects/batch", "info/lfs/objects/verify"):
                    self._auth(headers)
                    repo = self._get_repo(repo_type, repo_id, headers)
                    if rest.endswith("batch"):
                        self._lfs_batch(repo, json.loads(body))
                    self._lfs_verify(json.loads(body))
                r = re.fullmatch(r"resolve/([^/]+)/(.+)", rest)
                if r and method in ("GET", "HEAD"):
                    self._resolve(self._get_repo(repo_type, repo_id, headers), r.group(1), unquote(r.group(2)))

    def _create_repo(self, payload: dict[str, Any], headers: dict[str, str]) -> None:
        self._auth(headers)
        repo_type = payload.get("type") or "model"
        org, name = payload.get("organization"), payload["name"]
        repo_id = f"{org}/{name}" if org else f"user/{name}"
        prefix = {"dataset": "datasets/", "space": "spaces/"}.get(repo_type, "")
        url = f"{self.url}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.repos:
            raise _Reply(409, {"error": "You already created this repo", "url": url})
        private = payload.get("private") is True or payload.get("visibility") == "private"
        repo = Repo(repo_type, repo_id, private)
        sha = self._new_sha()
        attrs = b"*.npy filter=lfs diff=lfs merge=lfs -text\n"
        repo.commits[sha] = {".gitattributes": Entry(size=len(attrs), content=attrs)}
        repo.branches["main"] = sha
        self.repos[(repo_type, repo_id)] = repo
        raise _Reply(200, {"url": url, "name": repo_id})

    def _validate_yaml(self, payload: dict[str, Any]) -> None:
        content = payload.get("content", "")
        if not content.startswith("---\n") or "\n---\n" not in content[3:]:
            raise _Reply(400, {"errors": [{"message": "README.md has no YAML front matter"}], "warnings": []})
        raise _Reply(200, {"errors": [], "warnings": []})

    def _repo_info(self, repo: Repo, rev: str) -> None:
        sha = self._rev(repo, rev)
        raise _Reply(200, {
            "id": repo.repo_id, "sha": sha, "private": repo.private, "author": repo.repo_id.split("/")[0],
            "siblings": [{"rfilename": p} for p in sorted(repo.commits[sha])], "tags": [],
        })

    def _path_entry(self, repo: Repo, sha: str, path: str, expand: bool) -> dict[str, Any]:
        """One file or folder as the Hub's tree / paths-info endpoints describe it."""
        tree = repo.commits[sha]
        extra = {"lastCommit": {"id": sha, "title": "commit", "date": "2024-01-01T00:00:00.000Z"}} if expand else {}
        entry = tree.get(path)
        if entry is None:  # a folder: its oid is any stable id of its content
            listing = "\n".join(f"{p} {e.oid}" for p, e in sorted(tree.items()) if p.startswith(path + "/"))
            return {"type": "directory", "oid": hashlib.sha1(listing.encode()).hexdigest(), "size": 0,
                    "path": path, **extra}
        out: dict[str, Any] = {"type": "file", "size": entry.size, "path": path, **extra}
        if entry.lfs_oid:
            pointer = lfs_pointer(entry.lfs_oid, entry.size)
            out.update(oid=git_blob_sha1(pointer),
                       lfs={"oid": entry.lfs_oid, "size": entry.size, "pointerSize": len(pointer)})
        else:
            out["oid"] = entry.oid
        return out

    @staticmethod
    def _children(tree: dict[str, Entry], folder: str, recursive: bool) -> list[str] | None:
        """Paths under ``folder`` ('' = the root): direct children, or every file and folder below."""
        prefix = folder + "/" if folder else ""
        below = [p for p in tree if p.startswith(prefix)]
        if folder and not below:
            return None
        out: set[str] = set()
        for p in below:
            parts = p[len(prefix):].split("/")
            for depth in range(1, len(parts) + 1 if recursive else 2):
                out.add(prefix + "/".join(parts[:depth]))
        return sorted(out)

    def _tree(self, repo: Repo, rev: str, folder: str, recursive: bool, expand: bool) -> None:
        sha = self._rev(repo, rev)
        paths = self._children(repo.commits[sha], folder, recursive)
        if paths is None:
            raise _error(404, "EntryNotFound", f"{folder} does not exist on {unquote(rev)}", {"X-Repo-Commit": sha})
        raise _Reply(200, [self._path_entry(repo, sha, p, expand) for p in paths])

    def _paths_info(self, repo: Repo, rev: str, paths: list[str], expand: bool) -> None:
        sha = self._rev(repo, rev)
        tree = repo.commits[sha]
        found = [p.strip("/") for p in paths
                 if p.strip("/") in tree or any(q.startswith(p.strip("/") + "/") for q in tree)]
        raise _Reply(200, [self._path_entry(repo, sha, p, expand) for p in found])

    def _preupload(self, repo: Repo, rev: str, payload: dict[str, Any]) -> None:
        tree = repo.commits[self._rev(repo, rev)]
        files = []
        for f in payload["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] > LFS_THRESHOLD or b"\0" in sample
            existing = tree.get(f["path"])
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular",
                          "shouldIgnore": False, "oid": existing.oid if existing else None})
        raise _Reply(200, {"files": files, "commitOid": self._rev(repo, rev)})

    def _lfs_batch(self, repo: Repo, payload: dict[str, Any]) -> None:
        if payload.get("operation") != "upload":
            raise _Reply(422, {"message": "only uploads are implemented"})
        prefix = {"dataset": "datasets/", "space": "spaces/"}.get(repo.repo_type, "")
        objects = []
        for obj in payload["objects"]:
            oid, size = obj["oid"], obj["size"]
            if oid in self.lfs and len(self.lfs[oid]) == size:
                objects.append({"oid": oid, "size": size})  # already stored: no actions
                continue
            objects.append({
                "oid": oid, "size": size, "authenticated": True,
                "actions": {
                    "upload": {"href": f"{self.cdn_url}/upload/{oid}?size={size}", "header": {}},
                    "verify": {"href": f"{self.url}/{prefix}{repo.repo_id}.git/info/lfs/objects/verify",
                               "header": {}},
                },
            })
        raise _Reply(200, {"transfer": "basic", "objects": objects},
                     {"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_verify(self, payload: dict[str, Any]) -> None:
        oid, size = payload.get("oid"), payload.get("size")
        if oid not in self.lfs or len(self.lfs[oid]) != size:
            raise _Reply(404, {"message": f"object {oid} not found"})
        raise _Reply(200, {})

    def _commit(self, repo: Repo, rev: str, body: bytes) -> None:
        branch = unquote(rev)
        if branch not in repo.branches:
            raise _error(404, "RevisionNotFound", f"Invalid rev id: {branch}")
        tree = dict(repo.commits[repo.branches[branch]])
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "file":
                data = base64.b64decode(value["content"])
                tree[value["path"]] = Entry(size=len(data), content=data)
            elif key == "lfsFile":
                oid = value["oid"]
                if oid not in self.lfs:
                    raise _Reply(422, {"error": f"LFS object {oid} was not uploaded"})
                tree[value["path"]] = Entry(size=len(self.lfs[oid]), lfs_oid=oid)
            elif key == "deletedFile":
                tree.pop(value["path"], None)
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                for p in [p for p in tree if p.startswith(folder)]:
                    del tree[p]
            elif key != "header":
                raise _Reply(400, {"error": f"unknown commit operation {key}"})
        sha = self._new_sha()
        repo.commits[sha] = tree
        repo.branches[branch] = sha
        prefix = {"dataset": "datasets/", "space": "spaces/"}.get(repo.repo_type, "")
        raise _Reply(200, {"commitUrl": f"{self.url}/{prefix}{repo.repo_id}/commit/{sha}", "commitOid": sha,
                           "success": True, "pullRequestUrl": None})

    def _tag(self, repo: Repo, rev: str, payload: dict[str, Any]) -> None:
        sha = self._rev(repo, rev)
        tag = payload["tag"]
        if tag in repo.tags or tag in repo.branches:
            raise _error(409, None, f"Tag {tag} already exists")
        repo.tags[tag] = sha
        raise _Reply(200, {})

    def _resolve(self, repo: Repo, rev: str, path: str) -> None:
        sha = self._rev(repo, rev)
        entry = repo.commits[sha].get(path)
        if entry is None:
            raise _error(404, "EntryNotFound", f"{path} does not exist on {unquote(rev)}", {"X-Repo-Commit": sha})
        common = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if entry.lfs_oid:
            pointer = lfs_pointer(entry.lfs_oid, entry.size)
            raise _Reply(302, b"", {
                **common,
                "ETag": f'"{git_blob_sha1(pointer)}"',
                "X-Linked-Etag": f'"{entry.lfs_oid}"',
                "X-Linked-Size": str(entry.size),
                "Location": f"{self.cdn_url}/lfs/{entry.lfs_oid}",
            })
        raise _Reply(200, entry.content or b"", {
            **common, "ETag": f'"{git_blob_sha1(entry.content or b"")}"', "Content-Type": "application/octet-stream",
        })

    # ----------------------------------------------------------------------------- CDN routes
    def _route_cdn(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        with self.lock:
            m = re.fullmatch(r"/upload/([0-9a-f]{64})", path)
            if m and method == "PUT":
                oid = m.group(1)
                if hashlib.sha256(body).hexdigest() != oid:
                    raise _Reply(400, b"sha256 mismatch")
                self.lfs[oid] = body
                raise _Reply(200, b"", {"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
            m = re.fullmatch(r"/lfs/([0-9a-f]{64})", path)
            if m and method in ("GET", "HEAD"):
                data = self.lfs.get(m.group(1))
                if data is None:
                    raise _Reply(404, b"NoSuchKey")
                raise _Reply(200, data, {"ETag": f'"{hashlib.md5(data).hexdigest()}"',
                                         "Content-Type": "application/octet-stream"})


def _flag(params: dict[str, list[str]], name: str) -> bool:
    """A boolean query/form parameter as huggingface_hub sends it (``True`` / ``true`` / ``1``)."""
    return (params.get(name) or ["false"])[-1].lower() in ("1", "true")


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_HF_VARIABLES = ("HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_TOKEN",
                 "HUGGING_FACE_HUB_TOKEN", "HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "HF_OIDC_RESOURCE",
                 "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT", "HUGGINGFACE_CO_STAGING")


def isolate_hf(mp: Any, home: Any, endpoint: str) -> None:
    """Point huggingface_hub (and ``datasets``, if imported) at ``endpoint`` with no user token or
    cache, no Xet and no offline flag, and refuse any connection beyond 127.0.0.1.

    ``mp`` is a ``pytest.MonkeyPatch`` (undo restores everything); ``home`` a fresh folder. Both
    libraries read their settings once, at import, so the constants are patched as well as the
    environment.
    """
    import sys
    from pathlib import Path

    from huggingface_hub import constants

    home = Path(home)
    for var in _HF_VARIABLES:
        mp.delenv(var, raising=False)
    mp.setenv("HF_ENDPOINT", endpoint)
    mp.setenv("HF_HUB_DISABLE_XET", "1")
    mp.setattr(constants, "HF_HUB_DISABLE_XET", True, raising=False)
    mp.setattr(constants, "HF_HUB_OFFLINE", False)
    mp.setattr(constants, "ENDPOINT", endpoint)
    mp.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    mp.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    mp.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"), raising=False)
    mp.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    config = getattr(sys.modules.get("datasets"), "config", None)
    if config is not None:
        mp.setattr(config, "HF_ENDPOINT", endpoint)
        mp.setattr(config, "HUB_DATASETS_URL", endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}")
        mp.setattr(config, "HF_HUB_OFFLINE", False)
        mp.setattr(config, "HF_DATASETS_OFFLINE", False, raising=False)
        mp.setattr(config, "HF_CACHE_HOME", str(home))
        mp.setattr(config, "HF_DATASETS_CACHE", home / "datasets")
        mp.setattr(config, "HF_MODULES_CACHE", home / "modules")

    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOCAL_HOSTS:
            raise OSError(f"test guard: refusing to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in LOCAL_HOSTS:
            raise OSError(f"test guard: refusing to connect to {address!r}")
        return real_connect(self, address)

    mp.setattr(socket, "getaddrinfo", getaddrinfo)
    mp.setattr(socket.socket, "connect", connect)


def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BlackHole:
    """A 127.0.0.1 socket that completes TCP handshakes (backlog) but never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()
