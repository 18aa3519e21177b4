"""Deploys and wires the GridFlex protocol: the one place that knows the contracts'
constructor arguments and the roles each contract grants the others.

Wiring (mirrored by `contracts/test/utils/Deployers.sol`):
- Staking grants LOCKER_ROLE and SLASHER_ROLE to FlexMarket and OracleCommittee.
- Staking reads the market's dispute window, so unbonding can never be shorter.
- DisputeResolver (fraud proofs) holds FlexMarket.DISPUTE_ROLE (extends a report's dispute
  end, voids a report) and OracleCommittee.DISPUTE_ROLE (slashes its signers); nobody else
  holds either. It also holds Staking.SLASHER_ROLE (equivocation penalty of a device owner).
- DeliveryDispute (arithmetic fraud proofs: a record that does not follow from its used
  readings, a per-bid figure that is not the sum of its records) also holds
  FlexMarket.DISPUTE_ROLE (voids a report) and OracleCommittee.DISPUTE_ROLE (slashes its
  signers); it never extends a dispute and holds no Staking role.
- PoolRegistry (pools, their members, their members' payouts) is wired once both ways at
  deployment: DeviceRegistry.setPools (only it marks devices as pooled) and
  PoolRegistry.setMarket (only FlexMarket calls its bid and settlement hooks); FlexMarket
  takes it as a constructor argument.
- Governance (the deployer here; a multisig in production) keeps DEFAULT_ADMIN_ROLE
  everywhere and grants GRID_OPERATOR_ROLE and oracle seats afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from web3 import Web3

from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import Artifact, load_artifacts
from gridflex.chain.deployments import DeployedContract, Deployment

log = structlog.get_logger(__name__)

FLEX = 10**18
PROTOCOL_CONTRACTS = (
    "FlexToken",
    "DeviceRegistry",
    "Staking",
    "OracleCommittee",
    "FlexMarket",
    "DisputeResolver",
    "DeliveryDispute",
    "PoolRegistry",
)


@dataclass(frozen=True)
class ProtocolParams:
    """Launch parameters. Defaults follow DESIGN.md: a dispute window of a day and an
    unbonding period that outlasts it with room for arbitration."""

    flex_supply: int = 1_000_000_000 * FLEX
    unbonding_period_s: int = 14 * 24 * 3600
    dispute_window_s: int = 24 * 3600
    report_timeout_s: int = 2 * 24 * 3600
    oracle_bond: int = 10_000 * FLEX
    bond_per_kw: int = 10 * FLEX
    protocol_fee_bps: int = 100
    treasury: str | None = None
    """Defaults to the governance account."""

    @classmethod
    def local(cls) -> ProtocolParams:
        """Short windows for a local chain, where tests and the demo move time with anvil."""
        return cls(unbonding_period_s=3 * 3600, dispute_window_s=3600, report_timeout_s=6 * 3600)


def deploy_protocol(
    client: ChainClient,
    params: ProtocolParams | None = None,
    artifacts: Mapping[str, Artifact] | None = None,
) -> Deployment:
    """Deploy the eight protocol contracts from `client`'s account (governance) and wire them."""
    params = params or ProtocolParams()
    artifacts = artifacts or load_artifacts()
    governance = client.address
    treasury = Web3.to_checksum_address(params.treasury or governance)
    start_block = client.w3.eth.block_number

    token = client.deploy(artifacts["FlexToken"], governance, params.flex_supply)
    registry = client.deploy(artifacts["DeviceRegistry"])
    staking = client.deploy(
        artifacts["Staking"], token.address, governance, treasury, params.unbonding_period_s
    )
    committee = client.deploy(
        artifacts["OracleCommittee"], governance, staking.address, params.oracle_bond
    )
    pools = client.deploy(artifacts["PoolRegistry"], registry.address)
    client.send(registry.functions.setPools(pools.address))
    market = client.deploy(
        artifacts["FlexMarket"],
        governance,
        registry.address,
        staking.address,
        committee.address,
        pools.address,
        treasury,
    )
    client.send(pools.functions.setMarket(market.address))
    dispute = client.deploy(
        artifacts["DisputeResolver"],
        governance,
        market.address,
        committee.address,
        registry.address,
    )

    locker = staking.functions.LOCKER_ROLE().call()
    slasher = staking.functions.SLASHER_ROLE().call()
    for role in (locker, slasher):
        for grantee in (market.address, committee.address):
            client.send(staking.functions.grantRole(role, grantee))
    client.send(market.functions.setDisputeWindow(params.dispute_window_s))
    client.send(market.functions.setReportTimeout(params.report_timeout_s))
    client.send(market.functions.setBondPerKW(params.bond_per_kw))
    client.send(market.functions.setProtocolFeeBps(params.protocol_fee_bps))
    client.send(staking.functions.setDisputeWindowSource(market.address))
    client.send(market.functions.grantRole(market.functions.DISPUTE_ROLE().call(), dispute.address))
    client.send(
        committee.functions.grantRole(committee.functions.DISPUTE_ROLE().call(), dispute.address)
    )
    client.send(staking.functions.grantRole(slasher, dispute.address))
    # Challenger bonds: the resolver locks them at `challenge` and unlocks or slashes them.
    client.send(staking.functions.grantRole(locker, dispute.address))

    # ─── DeliveryDispute (arithmetic fraud proofs, issue 12 finding 11) ──────────────────
    delivery = client.deploy(
        artifacts["DeliveryDispute"],
        market.address,
        committee.address,
        registry.address,
        dispute.address,
    )
    client.send(
        market.functions.grantRole(market.functions.DISPUTE_ROLE().call(), delivery.address)
    )
    client.send(
        committee.functions.grantRole(committee.functions.DISPUTE_ROLE().call(), delivery.address)
    )
    # ─── end DeliveryDispute ─────────────────────────────────────────────────────────────

    contracts = {"FlexToken": token, "DeviceRegistry": registry, "Staking": staking}
    contracts |= {"OracleCommittee": committee, "FlexMarket": market, "DisputeResolver": dispute}
    contracts |= {"DeliveryDispute": delivery, "PoolRegistry": pools}
    deployment = Deployment(
        chain_id=client.chain_id,
        deployed_at_block=start_block + 1,
        contracts={
            name: DeployedContract(address=c.address, abi=artifacts[name].abi)
            for name, c in contracts.items()
        },
    )
    log.info("protocol deployed", chain_id=client.chain_id, market=market.address)
    return deployment
