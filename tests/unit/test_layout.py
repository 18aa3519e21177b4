"""The layout's import rules, read from the code's own import statements (and, for the rules
core, from what importing it really loads):

- `gridflex.rules` (the pure core) reaches no node, HTTP client, server or database library,
  and no other part of the project but `gridflex.errors`;
- the core package `gridflex` imports no component (node, oracle, explorer, cli);
- node, oracle and explorer never import each other, nor the CLI;
- only the CLI (`cli`, with the demo in `cli/demo`) wires components together.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("node", "oracle", "explorer")
WIRING = "cli"
IO_LIBRARIES = ("web3", "httpx", "sqlalchemy", "sqlmodel", "fastapi", "uvicorn", "psycopg")


def imported_modules(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` names in `path`, at any depth (imports
    inside functions count: they are imports all the same)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def package_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(module: str) -> str:
    return module.split(".")[0]


def violations(package: str, allowed: set[str] | None, refused: set[str]) -> list[str]:
    """`file: module` for each import of `package` whose top package is in `refused`."""
    found = []
    for path in package_files(package):
        for module in sorted(imported_modules(path)):
            if top(module) in refused and (allowed is None or module not in allowed):
                found.append(f"{path.relative_to(ROOT)}: {module}")
    return found


def test_imported_modules_sees_nested_and_from_imports(tmp_path: Path) -> None:
    """The reader the rules rest on: a rule it cannot see would pass by blindness."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import web3\nfrom oracle.db import x\n\ndef f():\n    from node import runner\n"
    )
    assert imported_modules(sample) == {"web3", "oracle.db", "node"}


def test_rules_core_names_no_io_library_and_no_other_layer() -> None:
    offenders = []
    for path in package_files("gridflex/rules"):
        for module in imported_modules(path):
            outside_layer = top(module) in (*IO_LIBRARIES, *COMPONENTS, WIRING)
            other_core_module = top(module) == "gridflex" and not (
                module.startswith("gridflex.rules") or module in ("gridflex", "gridflex.errors")
            )
            if outside_layer or other_core_module:
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []


def test_importing_the_rules_core_loads_no_io_library() -> None:
    """Transitively too: a pure module could still pull web3 in through a dependency."""
    script = (
        "import importlib, pkgutil, sys\n"
        "import gridflex.rules as rules\n"
        "for m in pkgutil.walk_packages(rules.__path__, 'gridflex.rules.'):\n"
        "    if not m.name.endswith(('.build', '._keccak_batch')):\n"
        "        importlib.import_module(m.name)\n"
        f"print(sorted({{k.split('.')[0] for k in sys.modules}} & set({IO_LIBRARIES!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_core_package_imports_no_component() -> None:
    assert violations("gridflex", None, {*COMPONENTS, WIRING}) == []


@pytest.mark.parametrize("component", COMPONENTS)
def test_components_never_import_each_other_nor_the_cli(component: str) -> None:
    others = {c for c in COMPONENTS if c != component} | {WIRING}
    assert violations(component, None, others) == []


def test_the_node_reaches_device_models_only_through_their_interface() -> None:
    """Dispatch, strategy and the meter loop call `DeviceAdapter` (`node/devices/base.py`):
    no node module outside `node/devices` imports a concrete model (a class defined in a
    model module, or the module itself), so a new kind is one module and a registry entry
    and no `isinstance` ladder elsewhere grows with it."""
    model_files = [p for p in (ROOT / "node" / "devices").glob("*.py") if p.stem != "base"]
    models = {f"node.devices.{path.stem}" for path in model_files} - {"node.devices.simulated"}
    model_classes = {
        node.name
        for path in model_files
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    }
    offenders = []
    for path in package_files("node"):
        if path.parent.name == "devices":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("node.devices"):
                names = {alias.name for alias in node.names} & model_classes
                if node.module in models or names:
                    offenders.append(f"{path.relative_to(ROOT)}: {node.module} {sorted(names)}")
    assert {"HomeBattery", "ModbusMeter"} <= model_classes and offenders == []


CHAIN_CALL_MARKERS = (".functions.", ".events.", "Web3(")


def chain_edge_violations(path: Path) -> list[str]:
    """`file:line: text` for each web3 import and each raw contract call, event read or
    hand-built connection in `path`: the CLI goes through typed `gridflex.chain` calls."""
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found = [f"{name}: imports {m}" for m in sorted(imported_modules(path)) if top(m) == "web3"]
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if any(marker in line for marker in CHAIN_CALL_MARKERS):
            found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_chain_edge_check_sees_imports_calls_and_connections(tmp_path: Path) -> None:
    sample = tmp_path / "sample_cmd.py"
    sample.write_text(
        "def f(market, w3):\n    from web3 import Web3\n    market.functions.clear(1)\n"
        "    market.events.Awarded()\n    Web3(provider)\n"
    )
    assert len(chain_edge_violations(sample)) == 4


def test_cli_commands_reach_the_chain_only_through_typed_gridflex_chain_calls() -> None:
    offenders = [
        v for path in sorted((ROOT / WIRING).glob("*.py")) for v in chain_edge_violations(path)
    ]
    assert offenders == []
