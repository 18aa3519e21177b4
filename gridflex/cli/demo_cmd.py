"""`gridflex demo`: one flexibility event on a fresh local chain, from deployment to
withdrawal, with every figure checked against the Python settlement mirror.

At this stage the actors are scripted in-process (device keys, bids, and oracle
signatures over the measured delivery); later the demo runs real node and oracle
processes. Everything on-chain is real: compiled contracts on an Osaka anvil.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)

TOKEN = 10**18
ZONE_NAME = "NL-AMS-01"


@dataclass
class DemoSummary:
    request_id: int
    escrow: int
    awarded_w: int
    clearing_price: int
    delivered_wh: int
    payouts: int
    fees: int
    slashed: int
    refund: int
    conserved: bool
    seconds: float


def demo(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
) -> None:
    """Start anvil, deploy GridFlex, run one event to settlement, print the outcome."""
    from web3.logs import DISCARD

    from gridflex.chain.anvil import AnvilProcess, anvil_dev_account, increase_time
    from gridflex.chain.client import ChainClient
    from gridflex.chain.compiler import load_artifacts
    from gridflex.chain.deploy import ProtocolParams, deploy_protocol
    from gridflex.chain.protocol import DeviceKind, Protocol, RequestSpec, zone_id
    from gridflex.eip712 import ReportPayload, p256_device_key, secp256k1_device_key, sign_report
    from gridflex.settlement import energy_wh

    started = time.monotonic()
    with AnvilProcess() as anvil:
        with console.status("compiling contracts..."):
            artifacts = load_artifacts()
        client = ChainClient.from_url(anvil.url, anvil_dev_account(0).key.hex(), artifacts)
        with console.status(f"deploying to anvil at {anvil.url}..."):
            governance = Protocol(
                client, deploy_protocol(client, ProtocolParams.local(), artifacts)
            )
        _print_addresses(governance)
        w3 = client.w3

        def now() -> int:
            return int(w3.eth.get_block("latest")["timestamp"])

        with console.status("seating a 2-of-3 oracle committee and a grid operator..."):
            oracles = [anvil_dev_account(i) for i in (7, 8, 9)]
            # each seat sets k for the new size: 1 of 1, 2 of 2, 2 of 3
            for oracle, threshold in zip(oracles, (1, 2, 2), strict=True):
                governance.seat_oracle(oracle, threshold)
            operator = governance.as_account(anvil_dev_account(1))
            governance.grant_grid_operator(operator.address)
            governance.send(governance.token.functions.transfer(operator.address, 10_000 * TOKEN))

        zone = zone_id(ZONE_NAME)
        owners = [governance.as_account(anvil_dev_account(i)) for i in (2, 3, 4)]
        fleet = [
            (DeviceKind.BATTERY, 10_000),
            (DeviceKind.HEAT_PUMP, 6_000),
            (DeviceKind.EV_CHARGER, 11_000),
        ]
        device_ids: dict[str, list[int]] = {}
        with console.status(
            "device owners register devices (secp256k1 and P-256 keys) and stake..."
        ):
            chain_id, registry = client.chain_id, governance.registry.address
            for owner in owners:
                governance.send(governance.token.functions.transfer(owner.address, 1_000 * TOKEN))
                owner.stake(1_000 * TOKEN)
                device_ids[owner.address] = []
                for n, (kind, capacity_w) in enumerate(fleet):
                    key = (
                        p256_device_key(
                            ec.generate_private_key(ec.SECP256R1()),
                            owner.address,
                            chain_id,
                            registry,
                        )
                        if n == 1
                        else secp256k1_device_key(
                            Account.create().key, owner.address, chain_id, registry
                        )
                    )
                    device_ids[owner.address].append(
                        owner.register_device(kind, capacity_w, zone, key)
                    )

        window_start = now() - now() % 900 + 2 * 3600
        spec = RequestSpec(
            zone=zone,
            power_w=50_000,
            window_start=window_start,
            window_end=window_start + 3600,
            price_cap_per_kwh=TOKEN * 30 // 100,
            gate_closure=window_start - 3600,
            settlement_token=governance.token.address,
        )
        with console.status("grid operator posts 50 kW for one hour, escrowing the budget..."):
            request_id, escrow = operator.create_request(spec)
        with console.status("device owners bid..."):
            for owner, price_cents in zip(owners, (18, 12, 25), strict=True):
                owner.bid(request_id, 24_000, TOKEN * price_cents // 100, device_ids[owner.address])
        with console.status("gate closure: clearing in merit order..."):
            increase_time(w3, spec.gate_closure - now())
            governance.clear(request_id)
            awarded = governance.awarded_w(request_id)
        with console.status("delivery window passes; 2 of 3 oracles sign the measured delivery..."):
            increase_time(w3, spec.window_end - now())
            # Scripted measurement: each awarded bid delivers 90% of its awarded energy.
            delivered = [energy_wh(w, 3600) * 9 // 10 for w in awarded]
            payload = ReportPayload(
                governance.market.address, request_id, 0, delivered, b"\x11" * 32, b"\x22" * 32
            )
            signatures = sign_report(
                payload, chain_id, governance.committee.address, [o.key for o in oracles[:2]]
            )
            governance.submit_report(
                request_id, delivered, payload.devices_root, payload.readings_root, signatures
            )
        with console.status("dispute window passes; finalize and withdraw..."):
            increase_time(w3, int(governance.market.functions.disputeWindow().call()))
            receipt = governance.finalize(request_id)
            (settled,) = governance.market.events.RequestSettled().process_receipt(
                receipt, errors=DISCARD
            )
            for actor in [*owners, operator, governance]:
                if governance.claimable(spec.settlement_token, actor.address):
                    actor.withdraw(spec.settlement_token)
        args = settled["args"]
        state = governance.request(request_id)
        summary = DemoSummary(
            request_id=request_id,
            escrow=escrow,
            awarded_w=state.awarded_w,
            clearing_price=state.clearing_price,
            delivered_wh=sum(delivered),
            payouts=int(args["payouts"]),
            fees=int(args["fees"]),
            slashed=int(args["slashed"]),
            refund=int(args["refund"]),
            conserved=int(args["payouts"]) + int(args["fees"]) + int(args["refund"]) == escrow,
            seconds=round(time.monotonic() - started, 2),
        )
    if as_json:
        print(json.dumps({"requests": [asdict(summary)]}, indent=2))
    else:
        _print_summary(summary)
    if not summary.conserved:
        raise typer.Exit(1)


def _print_addresses(governance: object) -> None:
    table = Table(title="GridFlex deployed on a local Osaka anvil")
    table.add_column("contract")
    table.add_column("address", style="cyan")
    for name, contract in sorted(governance.deployment.contracts.items()):  # type: ignore[attr-defined]
        table.add_row(name, contract.address)
    console.print(table)


def _print_summary(summary: DemoSummary) -> None:
    table = Table(title=f"Request {summary.request_id} settled")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("awarded power", f"{summary.awarded_w / 1000:,.1f} kW")
    table.add_row("clearing (marginal) price", f"{summary.clearing_price / TOKEN:,.4f} FLEX/kWh")
    table.add_row("delivered energy", f"{summary.delivered_wh / 1000:,.3f} kWh")
    for name in ("escrow", "payouts", "fees", "refund"):
        table.add_row(name, f"{getattr(summary, name) / TOKEN:,.6f} FLEX")
    table.add_row("slashed bonds", f"{summary.slashed / TOKEN:,.6f} FLEX")
    verdict = "[green]holds[/]" if summary.conserved else "[red]BROKEN[/]"
    table.add_row("escrow = payouts + fees + refund", verdict)
    console.print(table)
    console.print(f"done in {summary.seconds:.1f} s; anvil stopped.")
