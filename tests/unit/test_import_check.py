"""The import check of ``make check-imports`` (tools/check_imports.py): it finds cycles,
function-level ones included, and forbidden directions; and src/roost has none."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_imports", ROOT / "tools" / "check_imports.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


check_imports = _checker()


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "roost/__init__.py": "",
            "roost/imap/__init__.py": "",
            "roost/imap/session.py": "def run():\n    from roost.imap import dispatch\n",
            "roost/imap/dispatch.py": "from .session import run\n",
            "roost/imap/wire.py": "from roost.imap.session import run\n",
        },
    )
    problems = check_imports.check(root)
    assert problems == ["import cycle: roost.imap.dispatch -> roost.imap.session"]


def test_forbidden_directions_are_named(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "roost/__init__.py": "",
            "roost/store/__init__.py": "",
            "roost/store/base.py": "from roost.imap.session import Session\n",
            "roost/imap/__init__.py": "",
            "roost/imap/session.py": "import roost.store.base\n",
            "roost/imap/wire/__init__.py": "",
            "roost/imap/wire/parser.py": "import asyncio\nfrom roost.store import base\n",
            "roost/mime/__init__.py": "",
            "roost/mime/parse.py": "from ..store.base import Store\n",
        },
    )
    problems = check_imports.check(root)
    assert "import cycle: roost.imap.session -> roost.store.base" in problems
    forbidden = [
        p.split(":")[0] + ":" + p.split(" imports ")[1].split(":")[0] for p in problems[1:]
    ]
    assert forbidden == [
        "roost.imap.wire.parser:asyncio",
        "roost.imap.wire.parser:roost.store",
        "roost.mime.parse:roost.store.base",
        "roost.store.base:roost.imap.session",
    ]


def test_src_roost_has_no_cycle_and_no_forbidden_import() -> None:
    assert check_imports.check(ROOT / "src") == []
