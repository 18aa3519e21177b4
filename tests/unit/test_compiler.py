"""Compiler: solidity sources become artifacts, and unchanged sources are never recompiled."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridflex.chain import compiler
from gridflex.chain.compiler import REPO_ROOT, collect_sources, compile_contracts
from gridflex.errors import CompilationError, GridFlexError

BATTERY_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import "./BatteryErrors.sol";

contract Battery is Ownable {
    uint256 public storedWh;

    constructor() Ownable(msg.sender) {}

    function discharge(uint256 energyWh) external onlyOwner {
        if (energyWh > storedWh) revert NotEnoughEnergy(storedWh, energyWh);
        storedWh -= energyWh;
    }
}
"""
BATTERY_ERRORS_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// Thrown when a discharge asks for more energy than is stored.
error NotEnoughEnergy(uint256 storedWh, uint256 requestedWh);
"""


@pytest.fixture
def battery_sources(tmp_path: Path) -> Path:
    source_dir = tmp_path / "contracts"
    (source_dir / "test").mkdir(parents=True)
    (source_dir / "Battery.sol").write_text(BATTERY_SOURCE)
    (source_dir / "BatteryErrors.sol").write_text(BATTERY_ERRORS_SOURCE)
    # forge tests live under contracts/test and must not be compiled from Python
    (source_dir / "test" / "Battery.t.sol").write_text("this is not solidity")
    return source_dir


@pytest.fixture
def solc_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts real solc compilations by wrapping the module's single solc entry point."""
    calls: list[int] = []
    real_invoke = compiler._invoke_solc

    def counting_invoke(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real_invoke(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(compiler, "_invoke_solc", counting_invoke)
    return calls


def test_collect_sources_follows_remapped_and_relative_imports(battery_sources: Path) -> None:
    sources = collect_sources(battery_sources, project_root=REPO_ROOT)

    assert "contracts/Battery.sol" in sources
    assert "contracts/BatteryErrors.sol" in sources
    assert "node_modules/@openzeppelin/contracts/access/Ownable.sol" in sources
    # Ownable imports "../utils/Context.sol": resolved relative to its own unit name
    assert "node_modules/@openzeppelin/contracts/utils/Context.sol" in sources
    assert not any("/test/" in unit for unit in sources)


def test_compile_produces_abi_and_bytecode(
    battery_sources: Path, tmp_path: Path, solc_calls: list[int]
) -> None:
    artifacts = compile_contracts(battery_sources, build_dir=tmp_path / "build")

    battery = artifacts["Battery"]
    assert battery.is_deployable
    assert battery.bytecode.startswith("0x6080")
    assert battery.deployed_bytecode.startswith("0x")
    assert {"discharge", "storedWh", "owner"} <= {
        entry.get("name") for entry in battery.abi if entry["type"] == "function"
    }
    assert any(entry.get("name") == "NotEnoughEnergy" for entry in battery.abi)
    assert "Ownable" in artifacts  # dependencies are available too (for their errors)
    assert len(solc_calls) == 1


def test_unchanged_sources_are_served_from_cache_without_solc(
    battery_sources: Path, tmp_path: Path, solc_calls: list[int]
) -> None:
    build_dir = tmp_path / "build"
    first = compile_contracts(battery_sources, build_dir=build_dir)
    second = compile_contracts(battery_sources, build_dir=build_dir)

    assert len(solc_calls) == 1
    assert second == first
    assert len(list(build_dir.glob("*.json"))) == 2  # one artifact file + compiler versions


def test_changed_source_is_recompiled(
    battery_sources: Path, tmp_path: Path, solc_calls: list[int]
) -> None:
    build_dir = tmp_path / "build"
    compile_contracts(battery_sources, build_dir=build_dir)
    battery_file = battery_sources / "Battery.sol"
    battery_file.write_text(
        battery_file.read_text().replace(
            "uint256 public storedWh;", "uint256 public storedWh;\n    uint256 public capacityWh;"
        )
    )

    artifacts = compile_contracts(battery_sources, build_dir=build_dir)

    assert len(solc_calls) == 2
    assert any(entry.get("name") == "capacityWh" for entry in artifacts["Battery"].abi)
    assert len(list(build_dir.glob("*.json"))) == 3


def test_solidity_error_raises_compilation_error_with_solc_message(
    tmp_path: Path,
) -> None:
    source_dir = tmp_path / "contracts"
    source_dir.mkdir()
    (source_dir / "Broken.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity 0.8.37;\n"
        "contract Broken { function f() external { undefinedThing(); } }\n"
    )

    with pytest.raises(CompilationError) as raised:
        compile_contracts(source_dir, build_dir=tmp_path / "build")

    assert isinstance(raised.value, GridFlexError)
    assert any("undefinedThing" in message for message in raised.value.messages)


def test_solc_binary_env_wins_when_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_solc = tmp_path / "solc"
    fake_solc.write_text("#!/bin/sh\necho 'Version: 0.8.37+commit.fake'\n")
    fake_solc.chmod(0o755)
    monkeypatch.setenv("SOLC_BINARY", str(fake_solc))

    assert compiler.resolve_solc() == compiler.SolcChoice("env", fake_solc)


def test_repo_script_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOLC_BINARY", raising=False)
    monkeypatch.setattr(compiler, "_solcx_installed", lambda: None)

    choice = compiler.resolve_solc()

    assert choice == compiler.SolcChoice("repo-script", REPO_ROOT / "scripts" / "solc")
