import json

from PIL import Image

from cifar10s.cli.main import main


def test_build_info_show_round_trip(tmp_path, tiny_archive, capsys):
    root = tmp_path / "data"
    assert main(["build", "--variant", "ops", "--cifar10", str(tiny_archive), "--root", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "built: " in out and "NOT the official CIFAR-10" in out and "class 9: pixel" in out
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


def test_errors_are_clear_and_return_2(tmp_path, capsys):
    assert main(["build", "--variant", "ops", "--root", str(tmp_path)]) == 2
    assert "no CIFAR-10 found" in capsys.readouterr().err
    assert main(["show", "--variant", "ops", "--root", str(tmp_path)]) == 2
    assert "not built" in capsys.readouterr().err
    assert main(["build", "--variant", "bogus", "--root", str(tmp_path)]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["info", "--root", str(tmp_path / "nothing")]) == 0
    assert "nothing built yet" in capsys.readouterr().out


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
    assert main(["build", "--variant", "ops", "--cifar10", str(tmp_path / "missing.tar.gz"), "--root", str(root)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not root.exists()
