"""The grid operator's request posting: check the request, then fund its escrow the
cheapest way the token allows (existing allowance, an EIP-2612 permit, else an approve
transaction), then post it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gridflex.chain.permit import permit_domain, submit_permit
from gridflex.chain.protocol import Protocol
from gridflex.errors import GridFlexError, TransactionReverted
from gridflex.rules.types import RequestSpec

ESCROW_PULL_ERRORS = ("ERC20InsufficientAllowance", "SafeERC20FailedOperation")
"""Reverts of the dry run that only say the escrow cannot be pulled yet (no allowance)."""


class Approval(StrEnum):
    """How the market got the allowance to pull the escrow."""

    PERMIT = "permit"
    APPROVE = "approve"
    EXISTING = "existing allowance"


@dataclass
class InsufficientFundsError(GridFlexError):
    """The operator's `funds` ("balance" or "allowance") of the settlement token fall short
    of the request's budget (amounts in base units)."""

    funds: str
    needed: int
    available: int

    def __str__(self) -> str:
        return f"insufficient {self.funds}: need {self.needed}, have {self.available}"


@dataclass(frozen=True)
class PostedRequest:
    request_id: int
    escrow: int
    approval: Approval


def post_request(protocol: Protocol, spec: RequestSpec, *, may_approve: bool) -> PostedRequest:
    """Post `spec` with its budget escrowed. Role and parameters are checked first (the
    contract checks them before pulling the escrow), so nothing is signed or approved for a
    request that cannot be posted. `may_approve=False` uses the existing allowance only."""
    try:
        protocol.check_request(spec)
    except TransactionReverted as error:
        if error.error_name not in ESCROW_PULL_ERRORS:
            raise
    token, market = spec.settlement_token, protocol.market.address
    budget = protocol.budget_of(spec)
    balance = protocol.balance_of(token)
    if balance < budget:
        raise InsufficientFundsError("balance", budget, balance)
    allowance = protocol.allowance(token, market)
    if allowance >= budget:
        approval = Approval.EXISTING
    elif not may_approve:
        raise InsufficientFundsError("allowance", budget, allowance)
    elif (domain := permit_domain(protocol.client, token)) is not None:
        submit_permit(protocol.client, token, domain, market, budget)
        approval = Approval.PERMIT
    else:
        protocol.approve(token, market, budget)
        approval = Approval.APPROVE
    request_id, escrow = protocol.escrow_request(spec)
    return PostedRequest(request_id, escrow, approval)
