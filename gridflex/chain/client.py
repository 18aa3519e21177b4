"""A small signing chain client: builds transactions, signs them locally with an
eth-account key (no node-side accounts, so the same code works on anvil and on an L2),
waits for receipts, and turns reverts into `TransactionReverted` with the custom error's
name and arguments decoded from every ABI it knows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from eth_utils.abi import abi_to_signature, function_signature_to_4byte_selector
from eth_utils.abi import get_abi_input_types as _abi_input_types
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.types import TxParams, TxReceipt

from gridflex.chain.compiler import Artifact
from gridflex.chain.connect import connect
from gridflex.errors import DecodedRevert, GridFlexError, TransactionReverted

log = structlog.get_logger(__name__)

ERROR_STRING_SELECTOR = "0x08c379a0"  # Error(string), from require/revert("...")
GAS_ESTIMATE_MARGIN_PCT = 125
"""Gas limit = estimate x 1.25: an estimate is exact only for the state and block time it
ran on, and a challenge or bid mined a block later can take another branch (a displaced
bid, a bond locked by a concurrent challenge); a tx mined out of gas would cost the sender
and do nothing. Unused gas is not paid for."""
GAS_HEADROOM = 100_000
"""Added to the margin: a branch a block later can write fresh storage the estimate did
not (a registry change in its device's registration second rewrites the epoch in place, a
second later it appends one, ~60k gas more; seen as an out-of-gas `update` in CI)."""
TX_GAS_CAP = 2**24
"""Osaka's per-transaction gas cap (EIP-7825): the margin never takes a limit above it (a
transaction whose estimate alone exceeds it cannot be mined at all)."""
PANIC_SELECTOR = "0x4e487b71"  # Panic(uint256), from assert, overflow, bad index...

# Solidity panic codes (docs: "Panic via assert and Error via require").
PANIC_REASONS: dict[int, str] = {
    0x00: "generic compiler panic",
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to zero-initialized internal function",
}


class RevertDecoder:
    """Maps 4-byte selectors to `type: error` ABI entries and decodes revert data."""

    def __init__(self, abis: Iterable[list[dict[str, Any]]] = ()) -> None:
        self._errors_by_selector: dict[str, dict[str, Any]] = {}
        for abi in abis:
            self.register_abi(abi)

    def register_abi(self, abi: list[dict[str, Any]]) -> None:
        """Learn every custom error declared in `abi` (duplicates are harmless)."""
        for entry in abi:
            if entry.get("type") == "error":
                signature = abi_to_signature(entry)  # type: ignore[arg-type]
                selector = "0x" + function_signature_to_4byte_selector(signature).hex()
                self._errors_by_selector[selector] = entry

    @property
    def known_error_names(self) -> set[str]:
        return {entry["name"] for entry in self._errors_by_selector.values()}

    def decode(self, revert_data: str | bytes | None) -> DecodedRevert | None:
        """Decode `revert_data`; None for empty data, `UnknownError` for unknown selectors."""
        raw = HexBytes(revert_data or b"")
        if len(raw) < 4:
            return None
        selector, payload = "0x" + raw[:4].hex(), bytes(raw[4:])
        raw_hex = "0x" + raw.hex()
        try:
            if selector == ERROR_STRING_SELECTOR:
                (message,) = abi_decode(["string"], payload)
                return DecodedRevert("Error", {"message": message}, selector, raw_hex)
            if selector == PANIC_SELECTOR:
                (code,) = abi_decode(["uint256"], payload)
                reason = PANIC_REASONS.get(code, "unknown panic code")
                return DecodedRevert("Panic", {"code": code, "reason": reason}, selector, raw_hex)
            entry = self._errors_by_selector.get(selector)
            if entry is not None:
                values = abi_decode(_abi_input_types(entry), payload)  # type: ignore[arg-type]
                names = [
                    item.get("name") or f"arg{index}"
                    for index, item in enumerate(entry.get("inputs", []))
                ]
                values = [
                    to_checksum_address(value) if abi_type == "address" else value
                    for abi_type, value in zip(_abi_input_types(entry), values, strict=True)
                ]
                decoded_args = dict(zip(names, values, strict=True))
                return DecodedRevert(entry["name"], decoded_args, selector, raw_hex)
        except Exception:  # malformed payload: still report the selector
            log.warning("revert data did not decode", selector=selector)
        return DecodedRevert("UnknownError", {"data": raw_hex}, selector, raw_hex)


def _revert_data_of(error: ContractLogicError) -> str | None:
    """Raw revert data carried by web3's exception (a hex string or {'data': hex})."""
    data = error.data
    if isinstance(data, Mapping):
        data = data.get("data")
    return data if isinstance(data, str) else None


class ChainClient:
    """One account talking to one chain; `send()` is the only way GridFlex writes.

    The client is the account's one nonce source: threads that write with the same key
    (an oracle's committee loop and its watcher) share one client, and `send` hands out
    nonces under a lock, so two sends never take the same nonce."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        artifacts: Mapping[str, Artifact] | None = None,
        receipt_timeout: float = 120.0,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.receipt_timeout = receipt_timeout
        self.revert_decoder = RevertDecoder(artifact.abi for artifact in (artifacts or {}).values())
        self._chain_id: int | None = None
        self._next_nonce: int | None = None
        self._nonce_lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        rpc_url: str,
        private_key: str,
        artifacts: Mapping[str, Artifact] | None = None,
    ) -> ChainClient:
        """Client for `rpc_url` signing with `private_key` (hex)."""
        return cls(connect(rpc_url), Account.from_key(private_key), artifacts)

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def register_abi(self, abi: list[dict[str, Any]]) -> None:
        """Also decode the custom errors of `abi` (e.g. a contract loaded from a deployment)."""
        self.revert_decoder.register_abi(abi)

    def contract(self, address: str, abi: list[dict[str, Any]]) -> Contract:
        """A web3 contract bound to `address`; its errors become decodable."""
        self.register_abi(abi)
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def deploy(self, artifact: Artifact, *constructor_args: Any) -> Contract:
        """Deploy `artifact` and return the bound contract."""
        if not artifact.is_deployable:
            raise GridFlexError(f"{artifact.name} has no bytecode (interface or abstract)")
        self.register_abi(artifact.abi)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = self.send(factory.constructor(*constructor_args))
        address = receipt["contractAddress"]
        log.info("contract deployed", contract=artifact.name, address=address)
        return self.contract(address, artifact.abi)

    def _take_nonce(self) -> int:
        """Local nonce counter, so back-to-back sends don't wait on the node's pending pool
        (call with `_nonce_lock` held)."""
        if self._next_nonce is None:
            self._next_nonce = self.w3.eth.get_transaction_count(self.address, "pending")
        nonce = self._next_nonce
        self._next_nonce += 1
        return nonce

    def send(self, contract_fn: Any, *, value: int = 0, gas: int | None = None) -> TxReceipt:
        """Build, sign locally and send `contract_fn` (a bound function or constructor call),
        wait for the receipt, and raise TransactionReverted with the decoded error on revert.
        """
        tx_params: TxParams = {"from": self.address, "chainId": self.chain_id, "value": value}
        if gas is not None:
            tx_params["gas"] = gas
        try:
            tx = contract_fn.build_transaction(tx_params)  # estimates gas: reverts surface here
        except ContractLogicError as error:
            raise self._reverted(error) from error
        if gas is None:
            with_margin = tx["gas"] * GAS_ESTIMATE_MARGIN_PCT // 100 + GAS_HEADROOM
            tx["gas"] = max(tx["gas"], min(with_margin, TX_GAS_CAP))
        with self._nonce_lock:  # nonce taken and the tx in the pool, as one step
            tx["nonce"] = self._take_nonce()
            signed = self.account.sign_transaction(tx)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception:
                self._next_nonce = None  # resync from the node on the next send
                raise
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
        if receipt["status"] != 1:
            raise self._explain_mined_revert(tx, receipt)
        return receipt

    def call(self, contract_fn: Any, *, block: int | str = "latest") -> Any:
        """Read-only call with the same revert decoding as `send`."""
        try:
            return contract_fn.call({"from": self.address}, block_identifier=block)
        except ContractLogicError as error:
            raise self._reverted(error) from error

    def _reverted(
        self, error: ContractLogicError, tx_hash: str | None = None
    ) -> TransactionReverted:
        revert = self.revert_decoder.decode(_revert_data_of(error))
        return TransactionReverted(revert, tx_hash=tx_hash, detail=error.message)

    def _explain_mined_revert(self, tx: TxParams, receipt: TxReceipt) -> TransactionReverted:
        """Replay a mined, reverted tx with eth_call on the state before its block."""
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        replay: TxParams = {
            key: tx[key]  # type: ignore[literal-required]
            for key in ("from", "to", "data", "value", "gas")
            if key in tx
        }
        try:
            self.w3.eth.call(replay, block_identifier=receipt["blockNumber"] - 1)
        except ContractLogicError as error:
            return self._reverted(error, tx_hash)
        except Exception as error:  # replay itself failed: keep the fact it reverted
            return TransactionReverted(None, tx_hash=tx_hash, detail=f"replay failed: {error}")
        return TransactionReverted(None, tx_hash=tx_hash, detail="reverted (out of gas?)")
