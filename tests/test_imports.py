"""Every module imports on its own, whichever is imported first (no import cycles).

Each module of `distributor`, `workers` and `benchmarks` is imported as the first module of
the project in its interpreter: a few child interpreters share the list, and each forgets
every project module before importing the next one, so a cycle cannot hide behind a module
that happened to be imported earlier. Third-party libraries stay loaded, which keeps this
fast without changing what is being checked.

Not imported: `__main__` modules (importing them runs the program) and folders without an
`__init__.py`, which are not packages (the Alembic migrations, loaded from their files by
Alembic).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("distributor", "workers", "benchmarks")
CHILDREN = max(2, min(8, os.cpu_count() or 2))
TIMEOUT_SECONDS = 120


def _modules_in(package_dir: Path, name: str) -> Iterator[str]:
    yield name
    for path in sorted(package_dir.iterdir()):
        if path.is_dir() and (path / "__init__.py").is_file() and path.name.isidentifier():
            yield from _modules_in(path, f"{name}.{path.name}")
        elif (
            path.suffix == ".py"
            and path.stem.isidentifier()
            and path.stem not in ("__init__", "__main__")
        ):
            yield f"{name}.{path.stem}"


MODULES = [module for top in TOP_LEVEL for module in _modules_in(REPO_ROOT / top, top)]

CHILD = """
import importlib.machinery
import json
import sys
import traceback
import warnings

TOP_LEVEL = {top_level!r}

# Re-registering the same names (SQLAlchemy functions, ...) warns; only errors matter here.
warnings.simplefilter("ignore")

# Each project file is compiled once per child and its code reused at every re-import:
# executing the modules is what is being checked, compiling them again is only slow.
_compile = importlib.machinery.SourceFileLoader.source_to_code
_compiled = {{}}


def _source_to_code(self, data, path, *, _optimize=-1):
    key = (path, bytes(data))
    if key not in _compiled:
        _compiled[key] = _compile(self, data, path, _optimize=_optimize)
    return _compiled[key]


importlib.machinery.SourceFileLoader.source_to_code = _source_to_code


def forget_the_project():
    for name in list(sys.modules):
        if name.split(".")[0] in TOP_LEVEL:
            del sys.modules[name]


for module in sys.argv[1:]:
    forget_the_project()
    print(json.dumps({{"module": module, "started": True}}), flush=True)
    try:
        __import__(module)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        error = "".join(traceback.format_exception(exc)).strip()
    else:
        error = None
    print(json.dumps({{"module": module, "error": error}}), flush=True)
"""


def _report(module: str, error: str) -> str:
    return f"`import {module}` fails when it is imported first:\n{error}"


@pytest.fixture(scope="module")
def import_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """Each module's error when imported first (None when it imports), from child processes."""
    code = CHILD.format(top_level=TOP_LEVEL)
    env = dict(os.environ)
    # Importing the Celery app prepares the embedded broker's folders under the data dir.
    env["DISTRIBUTOR_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    env.pop("PYTHONPATH", None)
    chunks = [MODULES[i::CHILDREN] for i in range(CHILDREN)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, *chunk],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for chunk in chunks
        if chunk
    ]
    results: dict[str, str | None] = {}
    for child in children:
        try:
            out, err = child.communicate(timeout=TIMEOUT_SECONDS)
            timed_out = False
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            timed_out = True
        started: str | None = None
        for line in out.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a module printing on import
            if not isinstance(record, dict) or "module" not in record:
                continue
            if record.get("started"):
                started = record["module"]
            else:
                results[record["module"]] = record["error"]
                started = None
        if started is not None:
            how = f"did not finish within {TIMEOUT_SECONDS} s" if timed_out else "ended the process"
            results[started] = f"importing it {how}; the child's stderr:\n{err[-3000:]}"
    return results


def test_every_kind_of_module_is_found() -> None:
    for expected in (
        "distributor",
        "distributor.organisations",
        "distributor.releases.store",
        "distributor.cli.organisations",
        "workers.tasks",
        "benchmarks.cli",
    ):
        assert expected in MODULES
    assert not [m for m in MODULES if m.endswith("__main__") or ".migrations" in m]


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first(module: str, import_errors: dict[str, str | None]) -> None:
    assert module in import_errors, _report(module, "it was never imported (see the others)")
    error = import_errors[module]
    assert error is None, _report(module, error)
