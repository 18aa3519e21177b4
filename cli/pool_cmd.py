"""`gridflex pool ...`: pools of devices that bid as one (an aggregator's VPP, an energy
community). The operator creates the pool, sets its commission (in force after the notice
period), accepts members from their signed consents, bids for the pool and reads its
status; a member (a device owner, with its node's keystore) signs a consent to join,
leaves with notice, and claims its devices' shares of settled pool bids with the proofs an
oracle serves. Every revert is one readable sentence (`gridflex.errors_text`)."""

from __future__ import annotations

import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.common import fail, keystore_password, node_settings, readable, to_base_units
from gridflex.config import get_settings
from gridflex.errors_text import format_kw, format_time

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from gridflex.chain.protocol import Protocol

pool_app = typer.Typer(help="Pools: operators run them, members join, leave and claim.")
console = Console(soft_wrap=True)

OPERATOR_KEY_ENV = "GRIDFLEX_POOL_OPERATOR_KEY"
CONSENT_DAYS = 7
RpcOption = Annotated[
    str | None,
    typer.Option("--rpc-url", help="JSON-RPC URL (default GRIDFLEX_RPC_URL or local anvil)."),
]
KeyEnvOption = Annotated[
    str, typer.Option("--key-env", help="Environment variable holding the operator's key.")
]
PoolArg = Annotated[int, typer.Argument(help="Pool id.", min=1)]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Node data dir (default GRIDFLEX_NODE_DATA_DIR).")
]
PasswordEnvOption = Annotated[
    str | None,
    typer.Option("--password-env", help="Env var with the keystore password (else prompt)."),
]


def _open(rpc_url: str | None, account: LocalAccount | None) -> Protocol:
    from gridflex.chain.session import LOCAL_RPC_URL, open_protocol

    url = rpc_url or get_settings().rpc_url or LOCAL_RPC_URL
    with readable():
        return open_protocol(url, get_settings().deployments_dir, account)


def _operator(rpc_url: str | None, key_env: str) -> Protocol:
    from eth_account import Account

    key = os.environ.get(key_env)
    if not key:
        fail(f"set {key_env} to the pool operator's private key (hex), or pass --key-env VAR")
    try:
        account = Account.from_key(key)
    except (ValueError, TypeError) as error:
        fail(f"{key_env} does not hold a valid private key: {error}")
    return _open(rpc_url, account)


def _member(data_dir: Path | None, password_env: str | None) -> tuple[LocalAccount, list[int]]:
    """The node owner's account (from its keystore) and its registered device ids."""
    from node.keystore import load_owner
    from node.state import load_state

    settings = node_settings(data_dir)
    with readable():
        state = load_state(settings.data_dir)
    devices = [d.device_id for d in state.devices if d.device_id is not None]
    if not devices:
        fail("the node has no registered device (gridflex node register)")
    password = keystore_password(password_env, settings.password, confirm=False)
    with readable():
        return load_owner(settings.data_dir, password), devices


def _percent_bps(text: str) -> int:
    """'15', '15%' or '12.5%' -> basis points."""
    try:
        value = Decimal(text.strip().rstrip("%"))
    except InvalidOperation:
        fail(f"{text!r} is not a percentage")
    bps = value * 100
    if bps != bps.to_integral_value() or not 0 <= bps <= 10_000:
        fail(f"{text!r}: give a percentage between 0 and 100 in steps of 0.01")
    return int(bps)


# ─── Operators ────────────────────────────────────────────────────────────────────────


@pool_app.command("create")
def pool_create(
    name: Annotated[str, typer.Option("--name", help="The pool's name, shown to members.")],
    commission: Annotated[
        str, typer.Option("--commission", help="The operator's share of payouts, e.g. 15%.")
    ],
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = OPERATOR_KEY_ENV,
) -> None:
    """Create a pool run by the operator's account."""
    protocol = _operator(rpc_url, key_env)
    with readable():
        pool_id = protocol.create_pool(_percent_bps(commission), name)
    console.print(
        f"pool {pool_id} created: {name}, commission {commission}, operator {protocol.address}"
    )


@pool_app.command("commission")
def pool_commission(
    pool_id: PoolArg,
    commission: Annotated[str, typer.Argument(help="The new commission, e.g. 20%.")],
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = OPERATOR_KEY_ENV,
) -> None:
    """Schedule a new commission; it applies after the notice period, so members can leave."""
    protocol = _operator(rpc_url, key_env)
    with readable():
        effective_at = protocol.set_commission(pool_id, _percent_bps(commission))
    console.print(f"pool {pool_id}: commission {commission} from {format_time(effective_at)}")


@pool_app.command("accept")
def pool_accept(
    pool_id: PoolArg,
    consents: Annotated[
        list[Path], typer.Argument(help="Consent files from `gridflex pool join`.")
    ],
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = OPERATOR_KEY_ENV,
) -> None:
    """Enrol members' devices with their signed consents."""
    protocol = _operator(rpc_url, key_env)
    for path in consents:
        consent = _read_consent(path, pool_id, protocol)
        with readable():
            protocol.enroll(
                pool_id, consent["owner"], consent["deviceIds"], consent["nonce"],
                consent["deadline"], bytes.fromhex(consent["signature"].removeprefix("0x")),
            )  # fmt: skip
        console.print(
            f"pool {pool_id}: enrolled {len(consent['deviceIds'])} devices of {consent['owner']}"
        )


def _read_consent(path: Path, pool_id: int, protocol: Protocol) -> dict[str, Any]:
    from gridflex.safe_json import loads

    try:
        consent = loads(path.read_bytes())
    except (OSError, ValueError) as error:
        fail(f"{path}: not a consent file ({error})")
    fields = ("poolId", "owner", "deviceIds", "nonce", "deadline", "signature", "chainId", "pools")
    if not isinstance(consent, dict) or any(key not in consent for key in fields):
        fail(f"{path}: a consent file needs {', '.join(fields)}")
    if consent["poolId"] != pool_id:
        fail(f"{path}: the consent is for pool {consent['poolId']}, not {pool_id}")
    if consent["chainId"] != protocol.client.chain_id or consent["pools"] != protocol.pools.address:
        fail(f"{path}: the consent is for another deployment")
    return consent


@pool_app.command("bid")
def pool_bid(
    request_id: Annotated[int, typer.Argument(help="Request id.", min=1)],
    pool_id: PoolArg,
    power_kw: Annotated[float, typer.Option("--power-kw", help="Power offered (kW).", min=0)],
    price: Annotated[str, typer.Option("--price", help="Price per kWh, in the settlement token.")],
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = OPERATOR_KEY_ENV,
) -> None:
    """Bid for the pool: backed by its members in the request's zone, bonded by the operator."""
    from gridflex.errors_text import Units

    protocol = _operator(rpc_url, key_env)
    with readable():
        token = protocol.request(request_id).settlement_token
        units = Units.of_token(token, protocol.token_metadata(token))
        price_units = to_base_units(price, units.decimals, "--price")
        bid_index = protocol.bid_as_pool(request_id, pool_id, round(power_kw * 1000), price_units)
    offered = format_kw(round(power_kw * 1000))
    console.print(f"pool {pool_id} bid {offered} on request {request_id} (bid {bid_index})")


@pool_app.command("sweep")
def pool_sweep(
    request_id: Annotated[int, typer.Argument(help="Request id.", min=1)],
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = OPERATOR_KEY_ENV,
) -> None:
    """After the claim period (a year from settlement), move what members left unclaimed
    of the request's pool bids (and the splits' dust) to their operators' balances."""
    from gridflex.errors_text import Units

    protocol = _operator(rpc_url, key_env)
    with readable():
        token = protocol.request(request_id).settlement_token
        units = Units.of_token(token, protocol.token_metadata(token))
        pool_bids = [
            b.index for b in protocol.bids(request_id)
            if protocol.pool_bid_of(request_id, b.index).pool_id
        ]  # fmt: skip
        if not pool_bids:
            fail(f"request {request_id} has no pool bid")
        for bid_index in pool_bids:
            amount = protocol.sweep_unclaimed(request_id, bid_index)
            console.print(f"bid {bid_index}: swept {units.money(amount)} to its pool's operator")


@pool_app.command("status")
def pool_status(pool_id: PoolArg, rpc_url: RpcOption = None) -> None:
    """The pool's operator, commission (and a pending change), members and capacity by zone."""
    protocol = _open(rpc_url, None)
    with readable():
        pool = protocol.pool(pool_id)
        name = protocol.pool_name(pool_id)
        memberships = [m for m in protocol.memberships(pool_id) if m.leave_requested_at is None]
        zones = sorted({m.zone for m in memberships})
        capacity = {zone: protocol.pool_capacity(pool_id, zone) for zone in zones}
    console.print(f"pool {pool_id}: {name}")
    console.print(f"operator {pool.operator}, commission {pool.commission_bps / 100:g}%")
    if pool.pending_effective_at:
        pending = pool.pending_commission_bps / 100
        console.print(f"commission {pending:g}% from {format_time(pool.pending_effective_at)}")
    owners = {m.owner for m in memberships}
    console.print(f"{len(memberships)} devices of {len(owners)} members")
    table = Table("zone", "capacity", "devices")
    for zone in zones:
        count = sum(1 for m in memberships if m.zone == zone)
        table.add_row("0x" + zone.hex()[:12], format_kw(capacity[zone]), str(count))
    console.print(table)


# ─── Members ──────────────────────────────────────────────────────────────────────────


@pool_app.command("join")
def pool_join(
    pool_id: PoolArg,
    out: Annotated[Path, typer.Option("--out", help="Where to write the signed consent.")],
    device: Annotated[
        list[int] | None, typer.Option("--device", help="Device id (default: all the node's).")
    ] = None,
    rpc_url: RpcOption = None,
    data_dir: DataDirOption = None,
    password_env: PasswordEnvOption = None,
) -> None:
    """Sign the owner's consent to enrol its devices in a pool; the operator accepts it."""
    from gridflex.rules.eip712 import sign_digest_secp256k1
    from gridflex.rules.pools import MAX_DEVICES_PER_CONSENT, consent_digest

    owner, devices = _member(data_dir, password_env)
    chosen = sorted(device) if device else devices
    unknown = sorted(set(chosen) - set(devices))
    if unknown:
        fail(f"devices {unknown} are not this node's (it has {devices})")
    if len(chosen) > MAX_DEVICES_PER_CONSENT:
        fail(f"one consent covers at most {MAX_DEVICES_PER_CONSENT} devices")
    protocol = _open(rpc_url, owner)
    with readable():
        pool = protocol.pool(pool_id)
        nonce = protocol.consent_nonce(owner.address)
        deadline = protocol.latest_block_timestamp() + CONSENT_DAYS * 86_400
    digest = consent_digest(
        protocol.client.chain_id,
        protocol.pools.address,
        pool_id,
        owner.address,
        chosen,
        nonce,
        deadline,
    )
    consent = {
        "poolId": pool_id, "owner": owner.address, "deviceIds": chosen, "nonce": nonce,
        "deadline": deadline, "chainId": protocol.client.chain_id,
        "pools": protocol.pools.address,
        "signature": "0x" + sign_digest_secp256k1(owner.key, digest).hex(),
    }  # fmt: skip
    out.write_text(json.dumps(consent, indent=2) + "\n")
    console.print(
        f"consent to join pool {pool_id} (operator {pool.operator}, commission "
        f"{pool.commission_bps / 100:g}%) with {len(chosen)} devices written to {out}; valid until "
        f"{format_time(deadline)}"
    )


@pool_app.command("leave")
def pool_leave(
    device: Annotated[
        list[int] | None, typer.Option("--device", help="Device id (default: all the node's).")
    ] = None,
    complete: Annotated[
        bool, typer.Option("--complete", help="End memberships whose leave is due.")
    ] = False,
    rpc_url: RpcOption = None,
    data_dir: DataDirOption = None,
    password_env: PasswordEnvOption = None,
) -> None:
    """Ask to leave (the devices back no new pool bid; they stay until the notice and the
    pool's committed windows have passed), or with --complete end a due leave."""
    owner, devices = _member(data_dir, password_env)
    chosen = sorted(device) if device else devices
    protocol = _open(rpc_url, owner)
    with readable():
        if complete:
            protocol.complete_leave(chosen)
            console.print(f"devices {chosen} left their pool")
            return
        protocol.request_leave(chosen)
        leaving = [m for m in protocol.memberships() if m.device_id in chosen and m.leave_at]
    for membership in leaving:
        console.print(
            f"device {membership.device_id} leaves pool {membership.pool_id} at "
            f"{format_time(membership.leave_at or 0)}"
        )


@pool_app.command("claim")
def pool_claim(
    request_id: Annotated[int, typer.Argument(help="Request id.", min=1)],
    oracle: Annotated[str, typer.Option("--oracle", help="An oracle's URL (serves the proofs).")],
    rpc_url: RpcOption = None,
    data_dir: DataDirOption = None,
    password_env: PasswordEnvOption = None,
) -> None:
    """Claim the owner's devices' shares of the request's settled pool bids, in one
    transaction, with each device record's proof (checked on chain against the report)."""
    import httpx

    from gridflex.rules.pools import member_claims
    from gridflex.rules.reports import DeviceRecord

    owner, devices = _member(data_dir, password_env)
    protocol = _open(rpc_url, owner)
    records, proofs = [], []
    for device_id in devices:
        try:
            response = httpx.get(
                f"{oracle.rstrip('/')}/v1/reports/{request_id}/devices/{device_id}", timeout=30
            )
        except httpx.HTTPError as error:
            fail(f"oracle {oracle} unreachable: {error}")
        if response.status_code == 404:
            continue
        if response.status_code != 200:
            fail(f"oracle {oracle}: {response.status_code} {response.text[:200]}")
        body = response.json()
        record = DeviceRecord.from_json(body["record"])
        with readable():
            if protocol.pool_bid_of(request_id, record.bid_index).pool_id == 0:
                continue
            if protocol.member_claimed(request_id, device_id):
                console.print(f"device {device_id}: claimed already")
                continue
        records.append(record)
        proofs.append([bytes.fromhex(node.removeprefix("0x")) for node in body["recordProof"]])
    if not records:
        fail(f"nothing to claim in request {request_id} for {owner.address}")
    with readable():
        payouts = {r.bid_index: protocol.pool_payout(request_id, r.bid_index) for r in records}
        expected = sum(c.share for c in member_claims(records, payouts))
        amount = protocol.claim_member_shares(request_id, records, proofs)
    if amount != expected:
        fail(f"paid {amount}, but the shares add up to {expected}")
    console.print(
        f"claimed {amount} (base units) for {len(records)} devices in request {request_id}"
    )
