"""The oracle's report watcher: checks every posted report (each round) against this
oracle's own measurement and, when the roots differ, challenges it with a unit the device
signed that this oracle holds in its store.

Why its own store: the oracle verified every unit at ingest, so a used reading of the
posting signers that contradicts one of them is a fraud proof no peer can fake or
withhold. The posting signers' used readings and proofs come from their public API (the
peers whose published roots equal the posted ones). The loop itself, with its retries and
idempotence (`NotDisputable` = already voided = done), is `gridflex.watch.ReportWatcher`;
the checking is `gridflex.verify.check_report`, the same as `gridflex verify`.

Equivocation defence: a device owner may send one value to the oracles and keep a second
unit, signed by the same device for the same interval with another value, to challenge the
honest report with. The watcher therefore also looks at every challenge opened against a
report this oracle signed and, when its store holds the device-signed unit with the value
the report used, rebuts it (`OracleRebuttalFinder`): the challenge is dismissed, the device
owner slashed, the report stands.

Runs with the committee loop when a signer key is set and `watcher_enabled` is true; the
challenger's (or rebutter's) share of the slashed stake goes to this oracle's committee
account.
"""

from __future__ import annotations

import httpx
import structlog

from gridflex.chain.protocol import ChallengeState, Protocol
from gridflex.rules.attestation import (
    AttestationError,
    MeterUnit,
    meter_domain_separator,
    verify_unit,
)
from gridflex.rules.reports import unpack_used_readings
from gridflex.verify import (
    PostedReport,
    Proof,
    VerifyInputError,
    check_report,
    device_histories,
    fetch_device_data,
    fetch_report_summary,
    read_facts,
    unit_key,
)
from gridflex.watch import ReportWatcher
from oracle.clock import Clock
from oracle.config import OracleSettings
from oracle.report_book import ReportBook

log = structlog.get_logger(__name__)


class OracleEvidenceFinder:
    """Finds a fraud proof against a posted report from this oracle's signed units."""

    def __init__(self, settings: OracleSettings, book: ReportBook, protocol: Protocol) -> None:
        self.settings = settings
        self.book = book
        self.protocol = protocol
        self.http = httpx.Client(timeout=settings.peer_timeout_seconds)

    def __call__(self, posted: PostedReport) -> Proof | None:
        own = self.book.report_for(posted.request_id, posted.round)  # 425 -> retried later
        if (own.payload.devices_root, own.payload.readings_root) == (
            posted.devices_root,
            posted.readings_root,
        ):
            return None
        log.warning(
            "posted report differs from our measurement",
            request_id=posted.request_id,
            round=posted.round,
            signers=list(posted.signers),
        )
        facts = read_facts(self.protocol, posted.request_id, posted.round)
        device_ids = sorted({d for bid in facts.bids for d in bid.device_capacity_w})
        histories = device_histories(self.protocol, device_ids)
        domain = meter_domain_separator(
            self.protocol.client.chain_id, self.protocol.registry.address
        )
        served = False
        for peer in self.settings.peer_urls:
            try:
                summary = fetch_report_summary(self.http, peer, posted.request_id, posted.round)
                if not summary.matches(posted):
                    continue
                published = fetch_device_data(self.http, summary, posted.request_id)
            except VerifyInputError as error:
                log.info("peer data unavailable", peer=peer, error=str(error))
                continue
            served = True
            units: list[MeterUnit] = []
            for device_id, data in published.devices.items():
                intervals = [t for t, _ in unpack_used_readings(data.used_readings)]
                units.extend(self.book.signed_units(device_id, intervals))
            verdict = check_report(facts, posted, [published], histories, domain, units=units)
            proof = verdict.best_proof  # arithmetic (one-phase) first, then a reading
            if proof is not None:
                return proof
            log.warning(
                "posted report differs but no signed unit we hold contradicts it",
                request_id=posted.request_id,
                differences=[d.message for d in verdict.differences[:5]],
            )
            return None
        if not served:
            raise VerifyInputError("no peer serves the posted report's device data yet")
        return None

    def close(self) -> None:
        self.http.close()


class OracleRebuttalFinder:
    """Rebuttal evidence from this oracle's store: for a challenge against a report this
    oracle signed, the device-signed unit it holds whose value at the challenged interval is
    the one the report used (checked against the device's registered key before use)."""

    def __init__(self, book: ReportBook, protocol: Protocol) -> None:
        self.book = book
        self.protocol = protocol

    def __call__(self, challenge: ChallengeState) -> tuple[MeterUnit, int] | None:
        oracle_id = self.protocol.oracle_of(self.protocol.address).id
        if oracle_id == 0 or not (challenge.signer_bitmap >> (oracle_id - 1)) & 1:
            return None  # not a report we signed: its signers defend it
        history = device_histories(self.protocol, [challenge.device_id]).get(challenge.device_id)
        domain = meter_domain_separator(
            self.protocol.client.chain_id, self.protocol.registry.address
        )
        start = challenge.interval_start
        for unit in self.book.signed_units(challenge.device_id, [start]):
            offset = start - unit.first_interval_start
            if offset < 0 or offset % unit.interval_seconds:
                continue
            index = offset // unit.interval_seconds
            if index >= len(unit.energy_wh) or unit.energy_wh[index] != challenge.used_energy_wh:
                continue
            key = unit_key(history, unit)
            if key is None:  # before the registration or across epochs: the resolver refuses it
                continue
            try:
                verify_unit(unit, domain, key)
            except AttestationError as error:
                log.warning(
                    "stored unit does not verify", device_id=unit.device_id, error=str(error)
                )
                continue
            log.warning(
                "challenge contradicts a unit the device signed: equivocation",
                challenge_id=challenge.challenge_id,
                device_id=challenge.device_id,
                interval_start=start,
                used_wh=challenge.used_energy_wh,
                challenged_with_wh=challenge.signed_energy_wh,
            )
            return unit, index
        log.info(
            "no stored unit rebuts the challenge against our report",
            challenge_id=challenge.challenge_id,
            device_id=challenge.device_id,
        )
        return None


def build_watcher(
    settings: OracleSettings, book: ReportBook, signer: Protocol, clock: Clock
) -> ReportWatcher:
    """A watcher challenging (and rebutting) through `signer`: the committee key's one
    client (and nonce source), shared with the committee loop."""
    return ReportWatcher(
        signer,
        OracleEvidenceFinder(settings, book, signer),
        clock.now,
        poll_seconds=settings.committee_poll_seconds,
        retry_max_seconds=settings.rpc_retry_max_seconds,
        rebuttal_finder=OracleRebuttalFinder(book, signer),
    )
