"""The revert-to-sentence table: amounts with units, times in UTC, and a fallback that still
names the error when its arguments are not what the table expects."""

from __future__ import annotations

from eth_utils import keccak

from gridflex.errors import DecodedRevert, TransactionReverted
from gridflex.errors_text import Units, explain, explain_revert, format_amount, format_kw

FLEX = 10**18


def test_amounts_have_two_decimals_and_more_only_when_needed() -> None:
    assert format_amount(1_200 * FLEX, 18, "FLEX") == "1,200.00 FLEX"
    assert format_amount(200 * FLEX, 18) == "200.00"
    assert format_amount(6_237 * FLEX // 1000, 18, "FLEX") == "6.237 FLEX"
    assert format_amount(1, 6, "USDC") == "0.000001 USDC"
    assert format_kw(50_000) == "50 kW" and format_kw(1_500) == "1.5 kW"


def test_allowance_message_matches_the_issue_wording() -> None:
    args = {"spender": "0x" + "00" * 20, "allowance": 200 * FLEX, "needed": 1_200 * FLEX}
    assert (
        explain_revert("ERC20InsufficientAllowance", args, Units("FLEX", 18))
        == "insufficient allowance: need 1,200.00 FLEX, have 200.00"
    )


def test_gate_closure_messages_and_role_names() -> None:
    passed = explain_revert(
        "InvalidGateClosure", {"gateClosure": 100, "now_": 200, "windowStart": 900}
    )
    assert passed.startswith("gate closure has passed: 1970-01-01 00:01:40 UTC")
    late = explain_revert(
        "InvalidGateClosure", {"gateClosure": 1000, "now_": 0, "windowStart": 900}
    )
    assert (
        late
        == "gate closure 1970-01-01 00:16:40 UTC is after the window start 1970-01-01 00:15 UTC"
    )
    role = explain_revert(
        "AccessControlUnauthorizedAccount",
        {"account": "0xabc", "neededRole": keccak(text="GRID_OPERATOR_ROLE")},
    )
    assert role.startswith("not a grid operator: 0xabc lacks GRID_OPERATOR_ROLE")


def test_unknown_errors_and_unexpected_arguments_fall_back_to_the_raw_form() -> None:
    assert explain_revert("Mystery", {"x": 1}) == "reverted with Mystery(x=1)"
    assert explain_revert("GateClosed", {"oops": 1}) == "reverted with GateClosed(oops=1)"
    error = TransactionReverted(DecodedRevert("UnknownRequest", {"requestId": 7}), tx_hash="0x12")
    assert explain(error) == "request 7 does not exist (tx 0x12)"
    assert "unknown reason" in explain(TransactionReverted(None))


def test_every_sentence_template_uses_only_known_renderings() -> None:
    """A mistyped spec ({x:tme}) would fall back to the raw revert at run time."""
    import string

    from gridflex.errors_text import EXPLAINERS, TEMPLATES, SentenceFormatter

    known = set(SentenceFormatter(Units()).renderers) | {""}
    for name, template in TEMPLATES.items():
        specs = {spec for _text, field, spec, _conv in string.Formatter().parse(template) if field}
        assert specs <= known, (name, specs - known)
    assert not set(TEMPLATES) & set(EXPLAINERS)


def test_request_statuses_are_named_from_the_enum() -> None:
    args = {"requestId": 4, "status": 3, "expected": 1}
    assert explain_revert("WrongStatus", args) == "request 4 is reported, this needs it open"
    assert explain_revert("WrongStatus", {**args, "status": 99}).startswith("request 4 is 99,")
