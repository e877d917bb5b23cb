import json

from PIL import Image

from cifar10s.cli.main import main


def test_build_info_show_round_trip(tmp_path, tiny_archive, capsys):
    root = tmp_path / "data"
    assert main(["build", "--variant", "ops", "--cifar10", str(tiny_archive), "--root", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "built: " in out and "NOT official CIFAR-10 (a subset)" in out and "class 9: pixel" in out
    assert main(["build", "--variant", "ops", "--cifar10", str(tiny_archive), "--root", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "up to date: " in out and "built: " not in out and "class 9: pixel" in out
    assert main(["build", "--variant", "ops", "--root", str(root), "--quiet", "--force"]) == 0
    assert "built: " in capsys.readouterr().out
    assert main(["info", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "- clean:" in out and "- ops-k1:" in out
    assert main(["info", "--root", str(root), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"clean", "ops-k1"}
    png = tmp_path / "grid.png"
    assert main(["show", "--variant", "ops", "--root", str(root), "--out", str(png), "--per-class", "2",
                 "--amplify", "8"]) == 0
    img = Image.open(png)
    assert img.format == "PNG" and img.width > 300 and img.height > 300


def test_multi_pixel_build(tmp_path, tiny_archive, capsys):
    assert main(["build", "--variant", "ops", "--pixels", "3", "--objective", "paper-eq3",
                 "--cifar10", str(tiny_archive), "--root", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "cifar10s-v1" / "ops-k3-paper-eq3" / "shortcut.json").is_file()


def test_runtime_errors_are_one_clear_line_and_return_1(tmp_path, capsys):
    assert main(["build", "--variant", "ops", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no CIFAR-10 found" in err and err.count("\n") == 1
    assert main(["show", "--variant", "ops", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not built" in err and "cifar10s build --variant ops --root" in err
    assert main(["build", "--variant", "bogus", "--root", str(tmp_path)]) == 1
    assert "unknown variant" in capsys.readouterr().err
    assert main(["info", "--root", str(tmp_path)]) == 0
    assert "nothing built yet" in capsys.readouterr().out


def test_info_on_a_missing_root_fails(tmp_path, capsys):
    assert main(["info", "--root", str(tmp_path / "nothing")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


def test_console_script_is_installed():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = shutil.which("cifar10s") or str(Path(sys.executable).parent / "cifar10s")
    res = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert res.stdout.startswith("cifar10s ")


def test_bad_source_creates_nothing(tmp_path, capsys):
    root = tmp_path / "data"
    assert main(["build", "--variant", "ops", "--cifar10", str(tmp_path / "missing.tar.gz"), "--root", str(root)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not root.exists()


def test_usage_errors_return_2(capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["build", "--no-such-flag"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def _subcommands():
    from cifar10s.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices


def test_every_subcommand_documents_itself():
    """A description, an example, and a help text for every flag (defaults shown by the formatter)."""
    choices = _subcommands()
    assert {"download", "build", "info", "show", "rebuild", "verify", "publish", "fetch", "score", "submit",
            "validate", "leaderboard", "baselines", "train"} <= set(choices)
    for name, p in choices.items():
        assert p.description and len(p.description) > 30, name
        assert p.epilog and "cifar10s " in p.epilog, name
        for action in p._actions:
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
        text = p.format_help()
        assert "example:" in text or "examples:" in text, name
    assert "(default: paper)" in choices["score"].format_help()


def test_library_words_become_flag_words():
    from cifar10s.cli.common import cli_words

    msg = "variant 'ops' is not built. Build it, or pass download=True to build it here.\nsecond line"
    out = cli_words(msg)
    assert "download=True" not in out and "--download" in out and "\n" not in out
    out = cli_words("on a GPU (device='cuda'), or pass allow_slow=True to run it here anyway")
    assert out == "on a GPU (--device cuda), or add --allow-slow to run it here anyway"
    # a message that names both forms keeps its Python form intact
    both = "add --allow-slow (Python: allow_slow=True in build_variant)"
    assert cli_words(both) == both


def test_version_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; from cifar10s.cli.main import main\ntry:\n    main(['--version'])\nexcept SystemExit: pass\n" \
           "print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip().endswith("False")
