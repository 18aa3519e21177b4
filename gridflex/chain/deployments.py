"""Deployment records: `deployments/<chainId>.json` says where each GridFlex contract lives
on a chain, with its ABI, so the CLI, node, oracle, explorer and `cast` all find the same
addresses without recompiling.

Format: {"chainId", "rpcUrl"?, "deployedAtBlock", "contracts": {Name: {"address", "abi"}}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from gridflex.errors import DeploymentNotFoundError


@dataclass(frozen=True)
class DeployedContract:
    """One contract instance on one chain."""

    address: str
    abi: list[dict[str, Any]]


@dataclass
class Deployment:
    """All GridFlex contracts of one chain, as written by `gridflex deploy`."""

    chain_id: int
    deployed_at_block: int
    contracts: dict[str, DeployedContract] = field(default_factory=dict)
    rpc_url: str | None = None

    def address_of(self, name: str) -> str:
        """Checksummed address of contract `name`; KeyError names what is deployed."""
        try:
            return self.contracts[name].address
        except KeyError:
            raise KeyError(
                f"{name} is not in the chain {self.chain_id} deployment "
                f"(have: {', '.join(sorted(self.contracts)) or 'none'})"
            ) from None

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"chainId": self.chain_id}
        if self.rpc_url:
            payload["rpcUrl"] = self.rpc_url
        payload["deployedAtBlock"] = self.deployed_at_block
        payload["contracts"] = {
            name: {"address": contract.address, "abi": contract.abi}
            for name, contract in sorted(self.contracts.items())
        }
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        return cls(
            chain_id=int(data["chainId"]),
            deployed_at_block=int(data["deployedAtBlock"]),
            rpc_url=data.get("rpcUrl"),
            contracts={
                name: DeployedContract(
                    address=to_checksum_address(entry["address"]), abi=entry["abi"]
                )
                for name, entry in data.get("contracts", {}).items()
            },
        )


def deployment_path(chain_id: int, deployments_dir: Path) -> Path:
    """`<deployments_dir>/<chainId>.json`."""
    return Path(deployments_dir) / f"{chain_id}.json"


def save_deployment(deployment: Deployment, deployments_dir: Path) -> Path:
    """Write the record atomically (rename), so readers never see half a file."""
    path = deployment_path(deployment.chain_id, deployments_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp_path.write_text(json.dumps(deployment.to_json(), indent=2) + "\n")
    tmp_path.replace(path)
    return path


def load_deployment(chain_id: int, deployments_dir: Path) -> Deployment:
    """Read the record for `chain_id`; DeploymentNotFoundError says to run `gridflex deploy`."""
    path = deployment_path(chain_id, deployments_dir)
    if not path.is_file():
        raise DeploymentNotFoundError(
            f"no deployment for chain {chain_id} at {path}: run `gridflex deploy` first"
        )
    return Deployment.from_json(json.loads(path.read_text()))
