"""Every module of tocsin imports first: `python -c "import tocsin.x.y"` works for each one.

An import cycle can work in one order and fail in another (`a` imports `b`, which takes a
name from the half-initialised `a`): the whole suite passes, since some test imports `a`
first, while `import tocsin.b` alone fails. So each module is imported in a process where
no tocsin module has been loaded yet.

One fresh interpreter per module would spend most of its time importing the same
third-party libraries (pydantic, requests, APScheduler ...) and the same parent packages
again. Instead one fresh interpreter imports the libraries tocsin's modules name, and
nothing of tocsin; then a fork of it imports one tocsin module first. For a module inside
a package, the fork is made from the process that has just imported the package: a fresh
`import tocsin.a.b` runs `tocsin`, then `tocsin.a`, to their end before `tocsin.a.b`
starts, so that is the state `tocsin.a.b` would find anyway. (The libraries are shared, so
a module using a library's submodule that only another module imports is not caught here.)
"""

from __future__ import annotations

import ast
import importlib.util
import json
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

PACKAGE = "tocsin"

# Runs in a fresh interpreter. argv[1] is JSON [libraries to preload, {package: its direct
# submodules}, a directory]; writes there one file per module checked: its traceback, or empty.
_FORK_PER_MODULE = r"""
import importlib, json, os, sys, traceback

preload, submodules, out = json.loads(sys.argv[1])
for name in preload:
    try:
        importlib.import_module(name)
    except Exception:  # an optional library absent here: the module that needs it will say so
        pass
loaded = sorted(m for m in sys.modules if m == "tocsin" or m.startswith("tocsin."))
assert not loaded, f"a library imported tocsin: {loaded}"
parallel = len(os.sched_getaffinity(0)) or 1


def report(module, text):
    with open(os.path.join(out, module), "w") as f:
        f.write(text)


def check(modules):
    # From this process's state: one fork per module imports it, then checks its submodules.
    pending, running = list(modules), {}
    while pending or running:
        while pending and len(running) < parallel:
            module = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                try:
                    importlib.import_module(module)
                    report(module, "")
                    check(submodules.get(module, []))
                except BaseException:
                    report(module, traceback.format_exc() or "failed")
                os._exit(0)
            running[pid] = module
        pid, status = os.wait()
        module = running.pop(pid)
        if status != 0 and not os.path.exists(os.path.join(out, module)):
            report(module, f"the import ended the process (wait status {status})")


check(["tocsin"])
"""


def _package_dir() -> Path:
    """Where the interpreters started by the tests find tocsin (PYTHONPATH wins over the install)."""
    spec = importlib.util.find_spec(PACKAGE)  # finds the package without running it
    assert spec is not None and spec.submodule_search_locations, f"{PACKAGE} is not importable"
    return Path(list(spec.submodule_search_locations)[0])


def package_tree() -> dict[str, list[str]]:
    """Each package of tocsin with its direct submodules, found on disk by pkgutil (nothing is imported)."""
    tree: dict[str, list[str]] = {}

    def walk(path: Path, package: str) -> None:
        tree[package] = []
        for info in pkgutil.iter_modules([str(path)]):
            if info.name == "__main__":  # importing it would run the program
                continue
            tree[package].append(f"{package}.{info.name}")
            if info.ispkg:
                walk(path / info.name, f"{package}.{info.name}")

    walk(_package_dir(), PACKAGE)
    return tree


def libraries_named() -> list[str]:
    """The modules outside tocsin that its source imports anywhere (read from the syntax tree)."""
    names: set[str] = set()
    for path in _package_dir().rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return sorted(n for n in names if n != PACKAGE and not n.startswith(PACKAGE + "."))


def test_every_module_imports_first(tmp_path):
    from conftest import scaled

    tree = package_tree()
    modules = [PACKAGE, *(m for children in tree.values() for m in children)]
    assert len(modules) > 20 and "tocsin.cli" in modules, modules
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _FORK_PER_MODULE, json.dumps([libraries_named(), tree, str(tmp_path)])],
                          capture_output=True, text=True, timeout=scaled(120))
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    reports = {path.name: path.read_text() for path in tmp_path.iterdir()}
    failed = {module: report for module, report in reports.items() if report}
    assert not failed, "\n\n".join(f"import {module} (first) failed:\n{report}" for module, report in failed.items())
    assert sorted(reports) == sorted(modules), "modules not checked: their package did not import"
    assert elapsed < scaled(20), f"{elapsed:.1f}s to import {len(modules)} modules"
