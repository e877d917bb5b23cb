"""Signed result files: the scoring installation's Ed25519 key, and checking a file against trusted keys.

A result file is signed by the installation that scored it, so the board can tell results the
scorer wrote from hand-written or edited ones. The signature covers :func:`signed_bytes`: a
domain tag and the canonical JSON (sorted keys, no spaces, ASCII, no NaN) of every top-level
field except ``signature`` and the in-memory ``_``-keys the harness adds after reading. The file
stores ``{"algorithm": "ed25519", "key_id", "public_key", "signature"}``.

Trust comes only from the leaderboard's list of public keys (``*.pub`` files in a folder, one
``ed25519 <base64> [comment]`` line each). A file that carries its own public key and agrees with
it proves nothing: :func:`verify_record` accepts a signature only when that public key is listed.

The private key lives in the user's config folder (``$XDG_CONFIG_HOME/cifar10s/signing-key.pem``,
else ``~/.config/cifar10s/signing-key.pem``; ``$CIFAR10S_SIGNING_KEY`` names another file). It is
created on first use, atomically, readable by its owner only; a key file others can read is
refused. Ed25519 comes from ``cryptography`` (PyCA, OpenSSL underneath).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from ...errors import Cifar10sError

__all__ = [
    "ALGORITHM",
    "KEY_ENV",
    "SIGNATURE_FIELD",
    "SigningError",
    "SigningKey",
    "TrustedKeys",
    "Verification",
    "default_key_path",
    "default_trusted_keys",
    "load_signing_key",
    "load_trusted_keys",
    "sign_record",
    "signed_bytes",
    "verify_record",
]

ALGORITHM = "ed25519"
KEY_ENV = "CIFAR10S_SIGNING_KEY"
SIGNATURE_FIELD = "signature"
KEY_FILE = "signing-key.pem"
_DOMAIN = b"cifar10s-result-signature-v1\n"
_MAX_KEY_FILE = 64 * 1024
_MAX_KEYS = 1000


class SigningError(Cifar10sError, RuntimeError):
    """The signing key cannot be created or used; the message says what to do."""


def key_id(public_raw: bytes) -> str:
    """A short name of a public key: the first 16 hex digits of its sha256."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    """The installation's private key and where it lives."""

    private: Ed25519PrivateKey
    path: Path

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    def public_line(self) -> str:
        """The line a maintainer saves as ``trusted-keys/<name>.pub``."""
        return f"{ALGORITHM} {base64.b64encode(self.public_raw).decode('ascii')} cifar10s-{self.key_id}"


def default_key_path() -> Path:
    """``$CIFAR10S_SIGNING_KEY``, else ``$XDG_CONFIG_HOME/cifar10s/signing-key.pem``, else ``~/.config/...``."""
    given = os.environ.get(KEY_ENV)
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "cifar10s" / KEY_FILE


def _create(path: Path) -> None:
    """Write a new key to ``path`` (mode 0600) unless one appears there first; never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process created one first: use theirs
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def load_signing_key(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> SigningKey:
    """The installation's signing key (created on first use when ``create``).

    Refuses a key file that is a link, not a regular file, owned by someone else, or readable or
    writable by anyone but its owner, as SSH does.
    """
    path = Path(path).expanduser() if path is not None else default_key_path()
    if create and not os.path.lexists(path):
        try:
            _create(path)
        except OSError as exc:
            raise SigningError(f"cannot create the signing key {path}: {exc.strerror or exc}; set "
                               f"{KEY_ENV} to a file in a folder you can write") from None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise SigningError(f"no signing key at {path}") from None
    except OSError as exc:
        raise SigningError(f"cannot open the signing key {path}: {exc.strerror or exc} (it must be a regular "
                           "file, not a link)") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise SigningError(f"the signing key {path} is not a regular file")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise SigningError(f"the signing key {path} belongs to another user; use your own ({KEY_ENV})")
        if st.st_mode & 0o077:
            raise SigningError(f"the signing key {path} can be read or written by others "
                               f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}`, or delete it "
                               "to create a new one (and replace its public key in the trusted keys)")
        pem = fh.read(_MAX_KEY_FILE)
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"the signing key {path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningError(f"the signing key {path} is not an Ed25519 key")
    return SigningKey(private, path)


# ------------------------------------------------------------------------------------------------
# signing and verifying


def signed_bytes(record: Mapping[str, Any]) -> bytes:
    """What the signature covers: a domain tag + canonical JSON of the record without its signature.

    Raises ``ValueError``/``TypeError`` when the record is not plain JSON data (NaN included).
    """
    content = {k: v for k, v in record.items() if k != SIGNATURE_FIELD and not str(k).startswith("_")}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return _DOMAIN + text.encode("ascii")


def sign_record(record: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """``record`` with a ``signature`` block added (any old one replaced)."""
    signature = key.private.sign(signed_bytes(record))
    out = {k: v for k, v in record.items() if k != SIGNATURE_FIELD}
    out[SIGNATURE_FIELD] = {"algorithm": ALGORITHM, "key_id": key.key_id,
                            "public_key": base64.b64encode(key.public_raw).decode("ascii"),
                            "signature": base64.b64encode(signature).decode("ascii")}
    return out


@dataclass(frozen=True)
class TrustedKeys:
    """Public keys whose signatures the board accepts: raw key bytes -> the file that lists it."""

    keys: Mapping[bytes, str]
    where: str = "no trusted keys given"
    problems: tuple[str, ...] = ()

    @classmethod
    def of(cls, *public_raw: bytes, where: str = "given keys") -> TrustedKeys:
        return cls({k: where for k in public_raw}, where)


def _b64(text: Any, size: int, what: str) -> bytes:
    if not isinstance(text, str) or len(text) > 4 * size:
        raise ValueError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{what} is not valid base64") from None
    if len(raw) != size:
        raise ValueError(f"{what} is {len(raw)} bytes, not {size}")
    return raw


def parse_public_line(line: str) -> bytes:
    """The raw key of an ``ed25519 <base64> [comment]`` line (ValueError when it is not one)."""
    parts = line.split()
    if len(parts) < 2 or parts[0] != ALGORITHM:
        raise ValueError(f"expected '{ALGORITHM} <base64 public key> [comment]'")
    return _b64(parts[1], 32, "the public key")


#: where a checkout of the project keeps the public keys of the installations whose results it ranks
PROJECT_TRUSTED_KEYS = Path("leaderboard") / "trusted-keys"


def _is_checkout(base: Path) -> bool:
    """Whether ``base`` is the root of a cifar10s source tree (its pyproject.toml names the project)."""
    import tomllib

    try:
        with open(base / "pyproject.toml", "rb") as fh:
            return tomllib.load(fh).get("project", {}).get("name") == "cifar10s"
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return False


def default_trusted_keys(cwd: str | os.PathLike[str] | None = None) -> Path | None:
    """The project's trusted-keys folder, ``leaderboard/trusted-keys/`` of a cifar10s checkout.

    The checkout this package is imported from comes first (a source tree or an editable install:
    the keys that came with the code); else the current folder, when it is a checkout (a clone
    with the package installed elsewhere). An installed package run outside a checkout has none:
    pass the folder explicitly. A results folder is never searched: keys do not become trusted by
    sitting beside or inside the results they sign.
    """
    here = Path(__file__).resolve().parents[3]  # <root>/cifar10s/leaderboard/board/signing.py
    for base in (here, Path(cwd) if cwd is not None else Path.cwd()):
        folder = base / PROJECT_TRUSTED_KEYS
        if _is_checkout(base) and folder.is_dir():
            return folder
    return None


def load_trusted_keys(folder: str | os.PathLike[str] | None) -> TrustedKeys:
    """Every key in ``folder/*.pub``; unreadable lines are recorded in ``problems``, never fatal."""
    if folder is None:
        return TrustedKeys({})
    folder = Path(folder)
    keys: dict[bytes, str] = {}
    problems: list[str] = []
    if not folder.is_dir():
        return TrustedKeys({}, f"{folder} (missing)", (f"trusted-keys folder {folder} does not exist",))
    for path in sorted(folder.glob("*.pub"))[:_MAX_KEYS]:
        try:
            if not path.is_file() or path.stat().st_size > _MAX_KEY_FILE:
                raise ValueError("not a small regular file")
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problems.append(f"{path.name}: unreadable ({exc})")
            continue
        for n, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                keys.setdefault(parse_public_line(line), path.name)
            except ValueError as exc:
                problems.append(f"{path.name} line {n}: {exc}")
    return TrustedKeys(keys, str(folder), tuple(problems))


@dataclass(frozen=True)
class Verification:
    """Whether a record's signature is valid and by a trusted key; ``reason`` says why not."""

    ok: bool
    reason: str
    key_id: str | None = None
    signer: str | None = None  # the trusted-keys file that lists the key


def verify_record(record: Mapping[str, Any], trusted: TrustedKeys) -> Verification:
    """Check ``record``'s signature block against ``trusted``; never raises on a bad record."""
    block = record.get(SIGNATURE_FIELD) if isinstance(record, Mapping) else None
    if block is None:
        return Verification(False, "not signed: no signature block (scored before results were signed, or "
                                   "not written by the scorer)")
    if not isinstance(block, Mapping):
        return Verification(False, "signature block is not an object")
    if block.get("algorithm") != ALGORITHM:
        return Verification(False, f"signature algorithm is not {ALGORITHM}")
    try:
        public = _b64(block.get("public_key"), 32, "signature.public_key")
        signature = _b64(block.get("signature"), 64, "signature.signature")
    except ValueError as exc:
        return Verification(False, f"malformed signature block: {exc}")
    kid = key_id(public)
    if block.get("key_id") != kid:
        return Verification(False, "malformed signature block: key_id does not belong to public_key", kid)
    signer = trusted.keys.get(public)
    if signer is None:
        return Verification(False, f"signed by key {kid}, which is not a trusted key ({trusted.where}); a "
                                   "signature by a key that is not listed proves nothing", kid)
    try:
        message = signed_bytes(record)
    except (TypeError, ValueError, RecursionError) as exc:
        return Verification(False, f"not plain JSON data, cannot be checked ({str(exc)[:100]})", kid)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return Verification(False, f"bad signature: the content does not match what key {kid} signed (the "
                                   "file was changed after it was signed)", kid)
    return Verification(True, f"signed by trusted key {kid} ({signer})", kid, signer)
