"""The CLI shell: start-up cost, version, python -m, usage errors, --config."""

import subprocess
import sys
import time

import pytest

HELP_PATHS = [[], ["vision"], ["vision", "classify"], ["vision", "classify", "train"], ["cluster"], ["reduce"],
              ["vision", "classify", "predict"]]


@pytest.mark.parametrize("path", HELP_PATHS, ids=lambda p: " ".join(p) or "root")
def test_help_imports_no_torch_and_is_fast(path):
    code = ("import sys, time; t = time.perf_counter(); from dltool.cli import main\n"
            "try:\n    main({!r})\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "print(time.perf_counter() - t, file=sys.stderr)").format(path + ["--help"])
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout
    assert float(r.stderr.strip().splitlines()[-1]) < 0.5
    assert wall < 2.0  # interpreter start included


def test_version_and_python_m():
    r = subprocess.run([sys.executable, "-m", "dltool", "--version"], capture_output=True, text=True)
    assert r.returncode == 0
    from dltool import __version__

    assert r.stdout.strip() == f"dltool {__version__}"


def test_root_help_lists_only_built_domains(cli):
    r = cli("--help")
    assert r.code == 0
    assert "vision" in r.stdout and " text " in r.stdout and " audio " in r.stdout
    for absent in ("generate", "tune"):
        assert f" {absent} " not in r.stdout


def test_unknown_option_is_usage_error(cli):
    r = cli("vision", "classify", "train", "x", "--no-such-option")
    assert r.code == 2


def test_unknown_config_key_suggests(cli, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text("epoch = 3\n")
    r = cli("vision", "classify", "train", "x", "--config", cfg)
    assert r.code == 1
    assert r.stderr.startswith("error:") and "epochs" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unexpected_errors_are_one_line_unless_debug(cli, tmp_path, monkeypatch):
    import dltool.vision.classify as classify

    def boom(cfg):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(classify, "train", boom)
    r = cli("vision", "classify", "train", tmp_path)
    assert r.code == 1
    assert r.stderr.strip() == "error: RuntimeError: kaboom — rerun with --debug for the traceback"
    with pytest.raises(RuntimeError):
        from dltool.cli import main

        main(["--debug", "vision", "classify", "train", str(tmp_path)])
