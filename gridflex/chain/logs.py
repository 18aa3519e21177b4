"""Contract events as GridFlex reads them: fetched by block range (`eth_getLogs`) for a
deployment's contracts and decoded by ABI name, struct arguments as {member: value}. The
node's market follower, the explorer's indexer and `Protocol.events` all decode here."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3.contract.contract import ContractEvent
from web3.exceptions import BlockNotFound

from gridflex.chain.decode import struct_members
from gridflex.chain.deployments import Deployment


@dataclass(frozen=True)
class LoggedEvent:
    """One decoded contract event: its ABI-named `args` and where it was mined."""

    name: str
    args: Mapping[str, Any]
    block_number: int
    log_index: int
    tx_hash: str
    contract: str = ""
    """The deployment's name of the emitting contract (when read through DeploymentLogs)."""
    block_hash: str = ""


class BlockHeader(NamedTuple):
    """What dates an event and detects a reorg: the block's number, hash and time."""

    number: int
    hash: str
    timestamp: int


def _hex(value: Any) -> str:
    return "" if value is None else "0x" + bytes(value).hex()


def logged_event(event_abi: Mapping[str, Any], raw: Any, contract: str = "") -> LoggedEvent:
    """A web3 event log (`get_logs` / `process_log`) as a `LoggedEvent`, struct arguments
    as {member name: value} (from the event's ABI components)."""
    args = dict(raw["args"])
    for item in event_abi["inputs"]:
        if item["type"] == "tuple":
            args[item["name"]] = struct_members(item["components"], args[item["name"]])
    return LoggedEvent(
        event_abi["name"],
        args,
        int(raw.get("blockNumber") or 0),
        int(raw.get("logIndex") or 0),
        _hex(raw.get("transactionHash")),
        contract,
        _hex(raw.get("blockHash")),
    )


class DeploymentLogs:
    """The events of a deployment's contracts (or of the named `contracts`, and only the
    named `events`), block range by block range, in chain order."""

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        contracts: Collection[str] | None = None,
        events: Collection[str] | None = None,
    ) -> None:
        self.w3 = w3
        self.addresses: list[str] = []
        self._events: dict[tuple[str, bytes], tuple[str, ContractEvent, dict[str, Any]]] = {}
        for name, deployed in deployment.contracts.items():
            if contracts is not None and name not in contracts:
                continue
            address = to_checksum_address(deployed.address)
            contract = w3.eth.contract(address=address, abi=deployed.abi)
            self.addresses.append(address)
            for entry in deployed.abi:
                if entry.get("type") != "event" or (
                    events is not None and entry["name"] not in events
                ):
                    continue
                topic = bytes(event_abi_to_log_topic(entry))  # type: ignore[arg-type]
                self._events[(address.lower(), topic)] = (
                    name,
                    contract.events[entry["name"]](),
                    entry,
                )
        self._topics = None if events is None else sorted({"0x" + t.hex() for _, t in self._events})

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def block(self, number: int) -> BlockHeader | None:
        """The block at `number`, None when the node has none (yet, or any more)."""
        try:
            block = self.w3.eth.get_block(number)
        except BlockNotFound:
            return None
        return BlockHeader(number, _hex(block["hash"]), int(block["timestamp"]))

    def fetch(self, from_block: int, to_block: int) -> list[LoggedEvent]:
        """Every known event in [from_block, to_block], by (block, log index)."""
        query: dict[str, Any] = {
            "fromBlock": from_block,
            "toBlock": to_block,
            "address": self.addresses,
        }
        if self._topics is not None:
            query["topics"] = [self._topics]
        raw_logs = self.w3.eth.get_logs(query)  # type: ignore[arg-type]
        ordered = sorted(raw_logs, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
        return [event for event in map(self.decode, ordered) if event is not None]

    def decode(self, raw_log: Any) -> LoggedEvent | None:
        """The log decoded by its contract's ABI, None for a log no ABI here declares."""
        if not raw_log["topics"]:
            return None
        key = (str(raw_log["address"]).lower(), bytes(raw_log["topics"][0]))
        if key not in self._events:
            return None
        contract_name, event, entry = self._events[key]
        return logged_event(entry, event.process_log(raw_log), contract_name)
