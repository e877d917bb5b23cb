"""``cifar10s info`` checks what it lists; the messages a newcomer meets say once, in the caller's
words, what happened and the call or command that fixes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cifar10s import CIFAR10S, VariantSpec
from cifar10s.cli.common import cli_words
from cifar10s.cli.main import main
from cifar10s.release.builders import build_variant
from cifar10s.repair import calls_to_commands, repair_call, repair_command
from cifar10s.sources.cifar10 import SourceError, load_cifar10, resolve_cifar10
from cifar10s.store import IntegrityError, data_dir


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    from conftest import make_cifar_archive

    return make_cifar_archive(tmp_path_factory.mktemp("src") / "tiny.tar.gz")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, source) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    build_variant(root, VariantSpec("ops"), cifar10=source, progress=False)
    return root


@pytest.fixture
def root(pristine, tmp_path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(pristine, copy)
    return copy


def _flip_one_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _damage(root: Path) -> dict[str, str]:
    """A one-byte change, a truncated file and a garbage header, in two folders."""
    ops, clean = data_dir(root) / "ops-k1", data_dir(root) / "clean"
    _flip_one_byte(ops / "train_images.npy", -100)
    labels = ops / "train_labels.npy"
    labels.write_bytes(labels.read_bytes()[: labels.stat().st_size // 2])
    test = bytearray((clean / "test_images.npy").read_bytes())
    test[10:40] = b"x" * 30
    (clean / "test_images.npy").write_bytes(bytes(test))
    return {"ops-k1": "train_images.npy", "clean": "test_images.npy"}


def test_info_checks_every_file_and_names_each_damaged_one(root, source, capsys):
    assert main(["info", "--root", str(root)]) == 0
    assert "every file checked against its sha256" in capsys.readouterr().out
    _damage(root)
    assert main(["info", "--root", str(root)]) == 1
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    for name in ("ops-k1/train_images.npy", "ops-k1/train_labels.npy", "clean/test_images.npy"):
        assert f"DAMAGED {name.split('/')[1]}: {data_dir(root) / name}" in out, name
    assert out.count("does not match the manifest") == 2 and "has 4" in out  # two changed, one truncated
    # the command that repairs each folder, once per folder, in flags; and it does repair it
    for kind, folder in (("clean", "clean"), ("ops", "ops-k1")):
        command = f"cifar10s build --variant {kind} --root {root} --cifar10 {source} --force"
        assert out.count(f"repair: {command}") == 1 and f"{data_dir(root) / folder} is damaged" in err
        assert main(command.split()[1:]) == 0
    capsys.readouterr()
    assert main(["info", "--root", str(root)]) == 0


def test_info_fast_checks_sizes_and_headers_only(root, capsys):
    _flip_one_byte(data_dir(root) / "ops-k1" / "train_images.npy", -100)
    assert main(["info", "--root", str(root), "--fast"]) == 0  # a changed pixel needs the sha256
    test = data_dir(root) / "clean" / "test_images.npy"
    garbage = bytearray(test.read_bytes())
    garbage[10:40] = b"x" * 30  # a garbage header of the same size (numpy's parser raises TokenError on it)
    test.write_bytes(bytes(garbage))
    capsys.readouterr()
    assert main(["info", "--root", str(root), "--fast"]) == 1
    assert "DAMAGED test_images.npy: " in capsys.readouterr().out
    with pytest.raises(IntegrityError, match="not a readable .npy file"):
        CIFAR10S(root, train=False, verify=False)
    assert main(["info", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED train_images.npy" in out and "DAMAGED test_images.npy" in out


def test_info_reports_an_unreadable_manifest_instead_of_hiding_the_folder(root, capsys):
    (data_dir(root) / "ops-k1" / "manifest.json").write_text("{not json")
    assert main(["info", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "- ops-k1: manifest unreadable" in out and "DAMAGED manifest.json" in out and "- clean:" in out


def test_python_integrity_error_names_the_call_and_the_cli_its_command(root, source):
    _flip_one_byte(data_dir(root) / "ops-k1" / "train_images.npy", -100)
    with pytest.raises(IntegrityError) as info:
        CIFAR10S(root, variant="ops")
    message = str(info.value)
    call = (f"cifar10s.release.builders.build_variant({str(root)!r}, cifar10s.VariantSpec('ops'), "
            f"cifar10={str(source)!r}, force=True)")
    assert call in message and "--force" not in message and "\n" not in message
    assert cli_words(info.value).endswith(f"`cifar10s build --variant ops --root {root} --cifar10 {source} --force`")
    # the call does what it says
    from cifar10s.release import builders  # noqa: F401 - the module the call names
    import cifar10s

    eval(call, {"cifar10s": cifar10s})  # noqa: S307 - our own message, built from our own repr
    assert len(CIFAR10S(root, variant="ops")) == 100


def test_repair_of_a_fetched_folder_fetches_it_again(root):
    import json

    folder = data_dir(root) / "ops-k1"
    record = json.loads((folder / "manifest.json").read_text())
    record["fetched_from"] = {"repo_id": "org/CIFAR-10-S", "revision": "v1", "commit": "a" * 40, "endpoint": "x"}
    (folder / "manifest.json").write_text(json.dumps(record))
    assert repair_call(folder) == (f"cifar10s.hub.client.fetch_variant({str(root)!r}, 'ops-k1', "
                                   f"repo_id='org/CIFAR-10-S', revision='{'a' * 40}')")
    assert repair_command(folder) == (f"cifar10s fetch --variant ops-k1 --root {root} --repo-id org/CIFAR-10-S "
                                      f"--revision {'a' * 40}")
    assert repair_call(root / "elsewhere" / "x") == "cifar10s.release.builders.build_variant(root, spec, force=True)"
    assert calls_to_commands("a; repair it with cifar10s.release.builders.build_variant(root, spec, force=True)") \
        == "a; repair it with `cifar10s build --variant VARIANT --root ROOT --force`"
    # a root with brackets and a quote becomes one shell word; anything but literals is left alone
    odd = "/tmp/a (b)/d'q"
    call = f"cifar10s.release.builders.build_variant({odd!r}, cifar10s.VariantSpec('ops', pixels=3), force=True)"
    assert calls_to_commands(f"bad; repair it with {call}. more") == (
        "bad; repair it with `cifar10s build --variant ops --pixels 3 --root '/tmp/a (b)/d'\"'\"'q' --force`. more")
    hostile = "cifar10s.release.builders.build_variant(__import__('os').getcwd(), cifar10s.VariantSpec('ops'), force=True)"
    assert calls_to_commands(hostile) == hostile


def test_build_without_a_source_says_each_way_once_in_each_face(tmp_path, capsys):
    with pytest.raises(SourceError) as info:
        resolve_cifar10(tmp_path)
    api = str(info.value)
    assert api.count("download=True") == 1 and api.count("cifar10=PATH") == 1 and "--" not in api
    assert main(["build", "--variant", "ops", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("--download") == 1 and err.count("--cifar10 PATH") == 1
    assert "download=True" not in err and "(or" not in err and err.count("\n") == 1


def test_a_file_that_is_no_archive_is_named_as_such(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# not an archive\n" * 40)
    with pytest.raises(SourceError) as info:
        load_cifar10(readme)
    message = str(info.value)
    assert message.startswith(f"{readme} is not a CIFAR-10 archive")
    assert "could not be opened successfully" not in message and "download it again" not in message
    assert main(["build", "--variant", "ops", "--root", str(tmp_path / "r"), "--cifar10", str(readme)]) == 1
    assert "is not a CIFAR-10 archive" in capsys.readouterr().err


def test_unknown_variant_lists_the_multi_pixel_names(capsys, tmp_path):
    with pytest.raises(ValueError, match=r"unknown variant 'zz'; valid: clean, ops, em, cifar10s.*ops-kK"):
        VariantSpec("zz")
    assert main(["build", "--variant", "opps-k3", "--root", str(tmp_path)]) == 1
    assert "ops-kK" in capsys.readouterr().err


def test_train_and_test_from_different_copies_names_the_call_that_rebuilds_from_the_test_copy(root, source,
                                                                                               tmp_path):
    from conftest import make_cifar_archive

    other = make_cifar_archive(tmp_path / "other.tar.gz", seed=1)
    elsewhere = tmp_path / "elsewhere"
    build_variant(elsewhere, VariantSpec("ops"), cifar10=other, progress=False)
    shutil.rmtree(data_dir(root) / "ops-k1")
    shutil.copytree(data_dir(elsewhere) / "ops-k1", data_dir(root) / "ops-k1")
    with pytest.raises(IntegrityError, match="different CIFAR-10 source") as info:
        CIFAR10S(root, variant="ops")
    call = (f"cifar10s.release.builders.build_variant({str(root)!r}, cifar10s.VariantSpec('ops'), "
            f"cifar10={str(source)!r}, force=True)")
    assert str(info.value).endswith(call) and "--force" not in str(info.value)
    import cifar10s

    eval(call, {"cifar10s": cifar10s})  # noqa: S307 - our own message
    assert len(CIFAR10S(root, variant="ops")) == 100
