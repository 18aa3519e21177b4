"""Compile GridFlex's Solidity sources from Python with the same compiler and settings as
forge, and cache the artifacts by content hash so repeated runs (tests, demo, CLI) do not
pay for a compile they already did.

Compiler choice (automatic, logged): `$SOLC_BINARY` if executable, else a solc 0.8.37 that
py-solc-x installed, else the repo's `scripts/solc` (which falls back to solc-js).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import solcx
import solcx.exceptions
import solcx.wrapper
import structlog

from gridflex.config import get_settings
from gridflex.errors import CompilationError, ConfigurationError

log = structlog.get_logger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLC_VERSION = "0.8.37"
CACHE_FORMAT = 1

# Mirrors foundry.toml so forge and Python produce the same bytecode.
REMAPPINGS: tuple[str, ...] = ("@openzeppelin/=node_modules/@openzeppelin/",)
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "osaka",
    "viaIR": False,
    "remappings": list(REMAPPINGS),
    "metadata": {"bytecodeHash": "ipfs", "appendCBOR": True, "useLiteralContent": False},
    "libraries": {},
}
OUTPUT_SELECTION: dict[str, Any] = {
    "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
}

SolcKind = Literal["env", "solcx", "repo-script"]

# `import "a.sol";`, `import {X} from "a.sol";`, `import * as X from "a.sol";`,
# `import "a.sol" as X;` -- the path is the first quoted string after `import`.
_IMPORT_RE = re.compile(r"""\bimport\s+(?:[^;"']*?\s+from\s+)?["']([^"']+)["']""")
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class Artifact:
    """What deploying and calling a contract needs: its ABI and creation/runtime bytecode."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str

    @property
    def is_deployable(self) -> bool:
        """False for interfaces and abstract contracts (they have no creation code)."""
        return self.bytecode not in ("", "0x")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        return cls(
            name=data["name"],
            source=data["source"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
        )


@dataclass(frozen=True)
class SolcChoice:
    """The compiler executable GridFlex will use and why it was picked."""

    kind: SolcKind
    path: Path


def resolve_solc(project_root: Path = REPO_ROOT) -> SolcChoice:
    """Pick the compiler: $SOLC_BINARY, then solcx's installed 0.8.37, then scripts/solc."""
    env_binary = os.environ.get("SOLC_BINARY")
    if env_binary and os.access(env_binary, os.X_OK) and Path(env_binary).is_file():
        choice = SolcChoice("env", Path(env_binary))
    else:
        choice = _solcx_installed() or SolcChoice("repo-script", project_root / "scripts" / "solc")
        if not os.access(choice.path, os.X_OK):
            raise ConfigurationError(f"no usable Solidity compiler: {choice.path} not executable")
    log.info("solc selected", kind=choice.kind, path=str(choice.path))
    return choice


def _solcx_installed() -> SolcChoice | None:
    """solc 0.8.37 installed by py-solc-x (e.g. copied into ~/.solcx), if any."""
    try:
        installed = solcx.get_installed_solc_versions()
    except Exception:  # an unreadable ~/.solcx must not stop the fallback
        return None
    if any(str(version) == SOLC_VERSION for version in installed):
        return SolcChoice("solcx", Path(solcx.get_executable(SOLC_VERSION)))
    return None


# --------------------------------------------------------------------------------------------
# Source discovery: project files plus everything they import, keyed by source unit name
# --------------------------------------------------------------------------------------------


def _project_sources(source_dir: Path) -> list[Path]:
    """All `.sol` files under `source_dir` except its `test/` folder (forge tests)."""
    test_dir = source_dir / "test"
    return sorted(
        path
        for path in source_dir.rglob("*.sol")
        if test_dir not in path.parents and "node_modules" not in path.parts
    )


def _remap(import_path: str) -> str:
    """Apply the longest matching remapping prefix, as solc does."""
    best = ""
    target = ""
    for remapping in REMAPPINGS:
        prefix, _, replacement = remapping.partition("=")
        if import_path.startswith(prefix) and len(prefix) > len(best):
            best, target = prefix, replacement
    return target + import_path[len(best) :] if best else import_path


def _unit_name_for_import(importing_unit: str, import_path: str) -> str:
    """Source unit name solc gives an import seen in `importing_unit`."""
    if import_path.startswith(("./", "../")):
        joined = posixpath.join(posixpath.dirname(importing_unit), import_path)
        return posixpath.normpath(joined)
    return posixpath.normpath(_remap(import_path))


def _unit_name_base(source_dir: Path, project_root: Path) -> Path:
    """Folder that source unit names are relative to: the project root, or for a folder
    outside it (tests use temp dirs) the folder's parent."""
    source_dir, project_root = source_dir.resolve(), project_root.resolve()
    return project_root if project_root in source_dir.parents else source_dir.parent


def collect_sources(source_dir: Path, project_root: Path = REPO_ROOT) -> dict[str, str]:
    """Map source unit name -> content for the project sources and all their imports.

    Unit names are paths relative to the project root (as forge names them), so the
    metadata hash in the bytecode matches a forge build of the same sources.
    """
    source_dir = source_dir.resolve()
    project_root = project_root.resolve()
    base = _unit_name_base(source_dir, project_root)
    search_roots = [base] if base == project_root else [base, project_root]

    sources: dict[str, str] = {}
    pending = [path.relative_to(base).as_posix() for path in _project_sources(source_dir)]
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        file_path = next((root / unit for root in search_roots if (root / unit).is_file()), None)
        if file_path is None:
            raise CompilationError([f"import not found: {unit}"])
        content = file_path.read_text(encoding="utf-8")
        sources[unit] = content
        for import_path in _IMPORT_RE.findall(_COMMENT_RE.sub("", content)):
            pending.append(_unit_name_for_import(unit, import_path))
    return dict(sorted(sources.items()))


# --------------------------------------------------------------------------------------------
# Compilation with a content-addressed cache
# --------------------------------------------------------------------------------------------


def _compiler_version(choice: SolcChoice, build_dir: Path) -> str:
    """Full version of `choice`, cached per executable (path, size, mtime) to skip a spawn."""
    stat = choice.path.stat()
    fingerprint = f"{choice.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if choice.kind == "repo-script":
        # scripts/solc delegates to solc-js: its version lives in node_modules/solc.
        solcjs_package = choice.path.parent.parent / "node_modules" / "solc" / "package.json"
        if solcjs_package.is_file():
            fingerprint += "|" + hashlib.sha256(solcjs_package.read_bytes()).hexdigest()
    versions_file = build_dir / "compiler-versions.json"
    known: dict[str, str] = {}
    if versions_file.is_file():
        known = json.loads(versions_file.read_text())
    if fingerprint not in known:
        known[fingerprint] = solcx.wrapper.get_version_str_from_solc_binary(choice.path)
        _write_json_atomically(versions_file, known)
    return known[fingerprint]


def build_cache_key(sources: dict[str, str], compiler_version: str) -> str:
    """sha256 over every source (imports included), the settings and the compiler version."""
    digest = hashlib.sha256()
    digest.update(json.dumps(COMPILER_SETTINGS, sort_keys=True).encode())
    digest.update(compiler_version.encode())
    for unit, content in sources.items():
        digest.update(unit.encode() + b"\0" + content.encode() + b"\0")
    return digest.hexdigest()


def _invoke_solc(
    standard_input: dict[str, Any], choice: SolcChoice, allow_paths: list[Path]
) -> dict[str, Any]:
    """The single place that runs solc (tests count calls to it to check the cache)."""
    try:
        return solcx.compile_standard(
            standard_input,
            solc_binary=choice.path,
            allow_paths=[str(path) for path in allow_paths],
        )
    except solcx.exceptions.SolcError as exc:
        error_dict = getattr(exc, "error_dict", None) or []
        messages = [
            error.get("formattedMessage", error.get("message", str(error)))
            for error in error_dict
            if error.get("severity") == "error"
        ]
        if not messages:
            messages = [str(exc)]
        raise CompilationError(messages) from exc


def compile_contracts(
    source_dir: Path | None = None,
    *,
    project_root: Path = REPO_ROOT,
    build_dir: Path | None = None,
    solc: SolcChoice | None = None,
) -> dict[str, Artifact]:
    """Compile `source_dir` (default `contracts/`, without `contracts/test/`) to artifacts.

    Returns contract name -> Artifact for project contracts and their imported
    dependencies (project names win on a clash). Cached in `build_dir/<key>.json`.
    """
    source_dir = source_dir or project_root / "contracts"
    build_dir = build_dir or get_settings().build_dir
    if not source_dir.is_dir():
        raise ConfigurationError(f"Solidity source folder not found: {source_dir}")
    build_dir.mkdir(parents=True, exist_ok=True)

    sources = collect_sources(source_dir, project_root)
    if not sources:
        log.info("no Solidity sources", source_dir=str(source_dir))
        return {}
    choice = solc or resolve_solc(project_root)
    compiler_version = _compiler_version(choice, build_dir)
    cache_key = build_cache_key(sources, compiler_version)
    cache_file = build_dir / f"{cache_key}.json"

    if cache_file.is_file():
        log.info("artifacts cache hit", cache=str(cache_file), sources=len(sources))
        cached = json.loads(cache_file.read_text())
        return {name: Artifact.from_json(data) for name, data in cached["artifacts"].items()}

    log.info(
        "compiling contracts",
        sources=len(sources),
        compiler=compiler_version,
        solc=choice.kind,
    )
    standard_input = {
        "language": "Solidity",
        "sources": {unit: {"content": content} for unit, content in sources.items()},
        "settings": {**COMPILER_SETTINGS, "outputSelection": OUTPUT_SELECTION},
    }
    output = _invoke_solc(standard_input, choice, [project_root.resolve(), source_dir.resolve()])
    base = _unit_name_base(source_dir, project_root)
    project_units = {
        path.resolve().relative_to(base).as_posix() for path in _project_sources(source_dir)
    }
    artifacts = _artifacts_from_output(output, project_units)
    _write_json_atomically(
        cache_file,
        {
            "format": CACHE_FORMAT,
            "compiler": compiler_version,
            "settings": COMPILER_SETTINGS,
            "artifacts": {name: artifact.to_json() for name, artifact in artifacts.items()},
        },
    )
    log.info("contracts compiled", contracts=len(artifacts), cache=str(cache_file))
    return artifacts


def _artifacts_from_output(output: dict[str, Any], project_units: set[str]) -> dict[str, Artifact]:
    """Turn solc's standard JSON output into name -> Artifact, project contracts first."""

    ordered_units = sorted(
        output.get("contracts", {}), key=lambda unit: (unit in project_units, unit)
    )
    artifacts: dict[str, Artifact] = {}
    for unit in ordered_units:  # dependencies first, so project contracts overwrite clashes
        for name, contract in output["contracts"][unit].items():
            evm = contract.get("evm", {})
            artifacts[name] = Artifact(
                name=name,
                source=unit,
                abi=contract.get("abi", []),
                bytecode="0x" + evm.get("bytecode", {}).get("object", ""),
                deployed_bytecode="0x" + evm.get("deployedBytecode", {}).get("object", ""),
            )
    return artifacts


def load_artifacts(
    source_dir: Path | None = None,
    *,
    project_root: Path = REPO_ROOT,
    build_dir: Path | None = None,
) -> dict[str, Artifact]:
    """Name -> Artifact for the GridFlex contracts, compiling only if sources changed."""
    return compile_contracts(source_dir, project_root=project_root, build_dir=build_dir)


def _write_json_atomically(path: Path, payload: Any) -> None:
    """Write then rename, so a crashed or parallel run never leaves a half-written cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp_path.write_text(json.dumps(payload, sort_keys=True))
    tmp_path.replace(path)
