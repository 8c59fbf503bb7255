"""The engine stays pure: no shell, no Kafka, Faust or HTTP library (issue 14)."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import stream.engine

SHELLS = ("stream.worker", "stream.view", "stream.collectors", "stream.cli", "stream.commands")
LIBRARIES = (
    "faust",
    "aiokafka",
    "kafka",
    "confluent_kafka",
    "aiohttp",
    "httpx",
    "requests",
    "urllib3",
)
# The schema validates `exchange` against the registry's list of ids, a module that imports no
# venue code; that list is the one shell module the engine may reach (through stream.schema).
ID_LIST = ("stream.collectors", "stream.collectors.registry")
ENGINE_DIR = Path(stream.engine.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _forbidden(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in SHELLS + LIBRARIES)


def test_engine_modules_import_no_shell_and_no_io_library() -> None:
    modules = sorted(ENGINE_DIR.glob("*.py"))
    assert len(modules) >= 6
    found = {path.name: sorted(n for n in _imports(path) if _forbidden(n)) for path in modules}
    assert {name: bad for name, bad in found.items() if bad} == {}


def test_engine_imports_with_kafka_faust_and_http_libraries_blocked() -> None:
    """Every engine module imports in a fresh interpreter where those libraries cannot load."""
    modules = [f"stream.engine.{m.name}" for m in pkgutil.iter_modules([str(ENGINE_DIR)])]
    script = (
        "import sys\n"
        f"for name in {LIBRARIES!r}:\n"
        "    sys.modules[name] = None\n"
        f"for module in {modules!r}:\n"
        "    __import__(module)\n"
        f"loaded = [m for m in sys.modules if m.split('.')[0] in {LIBRARIES!r}"
        " and sys.modules[m]]\n"
        f"shells = [m for m in sys.modules if m.startswith({SHELLS!r}) and m not in {ID_LIST!r}]\n"
        "assert not loaded, loaded\n"
        "assert not shells, shells\n"
        "print('ok', len(sys.argv))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_evaluator_reads_windows_only_through_the_window_reader_protocol() -> None:
    """No attribute of the aggregation beyond `WindowReader`'s (it once read nine)."""
    from stream.engine.evaluator import WindowReader

    tree = ast.parse((ENGINE_DIR / "evaluator.py").read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "aggregation"
    }
    members = {name for name in dir(WindowReader) if not name.startswith("_")}
    members |= set(WindowReader.__annotations__)
    assert used and used <= members, used - members
