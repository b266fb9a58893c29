"""What ``pip install .`` gives: a wheel holding every module of src/roost (and its
type marker), and nothing of the tests, from which ``roost`` runs with the runtime
dependencies alone; and the README names exactly the dependencies pyproject lists.

The wheel is built offline (no build isolation: the dev environment has setuptools and
wheel), then unpacked with ``pip install --no-deps --target`` into a directory that is
put first on the path of a plain interpreter run in isolated mode, so that the roost it
imports is the wheel's, not the source tree's.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIP = (sys.executable, "-m", "pip")


def _wheel(tmp_path: Path) -> Path:
    subprocess.run(
        [
            *PIP,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("roost-*.whl")
    return wheel


def test_the_wheel_holds_every_module_and_runs(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {
        str(path.relative_to(ROOT / "src"))
        for path in (ROOT / "src" / "roost").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert modules <= names, sorted(modules - names)[:10]
    assert "roost/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)
    target = tmp_path / "site"
    subprocess.run(
        [*PIP, "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import roost, runpy; "
        "assert roost.__file__.startswith(sys.argv[1]), roost.__file__; "
        "sys.argv = ['roost', 'check-config', '--config', sys.argv[2]]; "
        "runpy.run_module('roost', run_name='__main__')"
    )
    config = tmp_path / "roost.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n'
        "[imap]\ntls_listen = []\nstarttls = false\n[pop3]\ntls_listen = []\nstarttls = false\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(target), str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{config}: OK"


def test_the_readme_names_the_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[<>=;\[ ]", spec, maxsplit=1)[0] for spec in project["dependencies"]}
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"dependencies \(([^)]*)\) are installed", readme.replace("\n", " "))
    assert found is not None
    named = {name.strip() for name in found.group(1).split(",")}
    assert named == wanted
