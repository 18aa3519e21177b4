"""The layout's import rules, read from the code's own import statements (and, for the rules
core, from what importing it really loads):

- `gridflex.rules` (the pure core) reaches no node, HTTP client, server or database library,
  and no other part of the project but `gridflex.errors`;
- the core package `gridflex` imports no component (node, oracle, explorer, cli);
- node, oracle and explorer never import each other, nor the CLI;
- only the CLI (`cli`, with the demo in `cli/demo`) wires components together;
- only `gridflex.chain` talks to a node: nothing else imports web3, builds a contract call
  (`.functions.`) or reads contract events (`.events.`); the others go through `Protocol`.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("node", "oracle", "explorer")
WIRING = "cli"
IO_LIBRARIES = ("web3", "httpx", "sqlalchemy", "sqlmodel", "fastapi", "uvicorn", "psycopg")
CHAIN_EDGE = ROOT / "gridflex" / "chain"
RAW_CONTRACT_ACCESS = re.compile(r"\.(functions|events)\.|\bWeb3\(")


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


def chain_rule_files() -> list[Path]:
    """Every module outside `gridflex/chain` of the core package, the components and the
    CLI with its demo."""
    return [
        path
        for package in ("gridflex", *COMPONENTS, WIRING)
        for path in package_files(package)
        if CHAIN_EDGE not in path.parents
    ]


def test_only_the_chain_edge_imports_web3() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in chain_rule_files()
        for module in sorted(imported_modules(path))
        if top(module) == "web3"
    ]
    assert offenders == []


def test_only_the_chain_edge_builds_contract_calls_or_reads_events() -> None:
    """`.functions.` / `.events.` / `Web3(` outside `gridflex/chain`: a second way to reach
    the chain next to `Protocol` and `gridflex.chain.connect`."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in chain_rule_files()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if RAW_CONTRACT_ACCESS.search(line)
    ]
    assert offenders == []


def test_chain_rule_sees_raw_access() -> None:
    """The pattern catches what it must (a rule it cannot see would pass by blindness)."""
    assert RAW_CONTRACT_ACCESS.search("protocol.market.functions.threshold().call()")
    assert RAW_CONTRACT_ACCESS.search("x.events.ReportSubmitted().get_logs()")
    assert RAW_CONTRACT_ACCESS.search("w3 = Web3(Web3.HTTPProvider(url))")
    assert not RAW_CONTRACT_ACCESS.search("protocol.events(protocol.market, 'Awarded')")
