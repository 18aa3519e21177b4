// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SecurityBase} from "./SecurityBase.sol";
import {FlexMarket} from "../../FlexMarket.sol";
import {OracleCommittee} from "../../OracleCommittee.sol";
import {DeviceRegistry} from "../../DeviceRegistry.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";
import {IOracleCommittee} from "../../interfaces/IOracleCommittee.sol";
import {IDeviceRegistry} from "../../interfaces/IDeviceRegistry.sol";
import {IDisputeResolver} from "../../interfaces/IDisputeResolver.sol";

/// @notice Signature replay, end to end through the contracts that accept signatures:
///         oracle reports (FlexMarket.submitReport -> OracleCommittee, EIP-712 naming market,
///         request and round under the committee's domain with the chain id), device key
///         proofs (DeviceRegistry, EIP-712 naming the owner under the registry's domain) and
///         meter units and challenge evidence (DisputeResolver, the registry's meter domain,
///         proofs under the pending report's readings root).
contract SignatureReplayTest is SecurityBase {
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    function setUp() public {
        setUpMarket();
    }

    // ─── Helpers ──────────────────────────────────────────────────────────────────────────

    function clearedRequest() internal returns (uint256 requestId) {
        requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 50_000, P20, ids(aliceDevice));
        clearRequest(requestId);
        warpTo(market.request(requestId).windowEnd);
    }

    /// @dev The address signature 0 recovers to when presented for (market_, requestId, round).
    function expectForeignSigner(
        OracleCommittee committee_,
        address market_,
        uint256 requestId,
        uint16 round,
        bytes memory signature
    ) internal {
        bytes32 digest = committee_.reportDigest(
            market_, requestId, round, keccak256(abi.encodePacked(wh(50_000))), "devices", "readings"
        );
        vm.expectRevert(
            abi.encodeWithSelector(IOracleCommittee.SignerNotOracle.selector, 0, recovered(digest, signature)),
            address(committee_)
        );
    }

    // ─── Oracle reports ───────────────────────────────────────────────────────────────────

    function test_report_replayedOnAnotherRequest_refused() public {
        uint256 first = clearedRequest();
        uint256 second = clearedRequest();
        bytes[] memory sigs = signReport(first, 0, wh(50_000), "devices", "readings", twoSigners());
        expectForeignSigner(committee, address(market), second, 0, sigs[0]);
        market.submitReport(second, wh(50_000), "devices", "readings", sigs);
        // Where they belong they verify.
        market.submitReport(first, wh(50_000), "devices", "readings", sigs);
        assertEq(statusOf(first), uint256(IFlexMarket.RequestStatus.Reported), "own request");
    }

    function test_report_replayedInTheNextRound_refused() public {
        uint256 requestId = clearedRequest();
        bytes[] memory round0 = signReport(requestId, 0, wh(50_000), "devices", "readings", twoSigners());
        market.submitReport(requestId, wh(50_000), "devices", "readings", round0);
        vm.prank(disputer);
        market.voidReport(requestId);
        assertEq(market.request(requestId).reportRound, 1, "next round");
        // The very same report, signatures of round 0: refused in round 1.
        expectForeignSigner(committee, address(market), requestId, 1, round0[0]);
        market.submitReport(requestId, wh(50_000), "devices", "readings", round0);
    }

    function test_report_replayedOnAnotherChain_refused() public {
        uint256 requestId = clearedRequest();
        bytes[] memory sigs = signReport(requestId, 0, wh(50_000), "devices", "readings", twoSigners());
        uint256 home = block.chainid;
        vm.chainId(home + 1); // a fork: same contracts, same state, another chain id
        expectForeignSigner(committee, address(market), requestId, 0, sigs[0]);
        market.submitReport(requestId, wh(50_000), "devices", "readings", sigs);
        vm.chainId(home);
        market.submitReport(requestId, wh(50_000), "devices", "readings", sigs);
    }

    function test_report_replayedOnAnotherMarketSharingTheCommittee_refused() public {
        FlexMarket other = new FlexMarket(governance, registry, staking, committee, pools, treasury);
        vm.startPrank(governance);
        other.grantRole(other.GRID_OPERATOR_ROLE(), gridOperator);
        staking.grantRole(staking.LOCKER_ROLE(), address(other));
        vm.stopPrank();
        vm.prank(gridOperator);
        eur.approve(address(other), type(uint256).max);
        uint256 requestId = clearedRequest();
        // The same request id, bid and figures on the other market.
        vm.warp(T0);
        vm.prank(gridOperator);
        uint256 otherId = other.createRequest(defaultParams());
        assertEq(otherId, requestId, "same id");
        vm.prank(bob);
        other.bid(otherId, 50_000, P20, ids(bobDevice));
        vm.warp(other.request(otherId).gateClosure);
        other.clear(otherId, new uint16[](1));
        vm.warp(other.request(otherId).windowEnd);

        bytes[] memory forMarket = signReport(requestId, 0, wh(50_000), "devices", "readings", twoSigners());
        expectForeignSigner(committee, address(other), otherId, 0, forMarket[0]);
        other.submitReport(otherId, wh(50_000), "devices", "readings", forMarket);
    }

    function test_report_replayedOnASecondDeployment_refused() public {
        uint256 requestId = clearedRequest();
        bytes[] memory sigs = signReport(requestId, 0, wh(50_000), "devices", "readings", twoSigners());
        // A second, identical deployment with the same oracle keys and the same request id.
        deployProtocol();
        addProvider(alice, ALICE_DEVICE_KEY);
        uint256 secondId = clearedRequest();
        assertEq(secondId, requestId, "same id");
        expectForeignSigner(committee, address(market), secondId, 0, sigs[0]);
        market.submitReport(secondId, wh(50_000), "devices", "readings", sigs);
    }

    function test_report_malleatedSignature_refused() public {
        uint256 requestId = clearedRequest();
        bytes[] memory sigs = signReport(requestId, 0, wh(50_000), "devices", "readings", twoSigners());
        // (r, n - s, v ^ 1) recovers the same signer: ECDSA refuses the high-s twin.
        (bytes32 r, bytes32 s) = abi.decode(sigs[1], (bytes32, bytes32));
        uint8 v = uint8(sigs[1][64]);
        sigs[1] = abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.MalformedSignature.selector, 1), address(committee));
        market.submitReport(requestId, wh(50_000), "devices", "readings", sigs);
    }

    function test_report_oneSignatureTwice_refused() public {
        uint256 requestId = clearedRequest();
        bytes[] memory sigs = signReport(requestId, 0, wh(50_000), "devices", "readings", twoSigners());
        sigs[1] = sigs[0];
        bytes32 digest = committee.reportDigest(
            address(market), requestId, 0, keccak256(abi.encodePacked(wh(50_000))), "devices", "readings"
        );
        vm.expectRevert(
            abi.encodeWithSelector(IOracleCommittee.SignersNotAscending.selector, 1, recovered(digest, sigs[0])),
            address(committee)
        );
        market.submitReport(requestId, wh(50_000), "devices", "readings", sigs);
    }

    // ─── Device key proofs ────────────────────────────────────────────────────────────────

    function test_keyProof_replayedForAnotherOwner_refused() public {
        IDeviceRegistry.DeviceKey memory aliceProof = secpKey(alice, 0xABC);
        vm.expectRevert(
            abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, IDeviceRegistry.KeyType.Secp256k1)
        );
        vm.prank(stranger);
        registry.register(0, 1_000, ZONE, aliceProof);
    }

    function test_keyProof_replayedOnAnotherChainOrRegistry_refused() public {
        IDeviceRegistry.DeviceKey memory proof = secpKey(alice, 0xABC);
        DeviceRegistry other = new DeviceRegistry();
        vm.expectRevert(
            abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, IDeviceRegistry.KeyType.Secp256k1)
        );
        vm.prank(alice);
        other.register(0, 1_000, ZONE, proof);

        uint256 home = block.chainid;
        vm.chainId(home + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, IDeviceRegistry.KeyType.Secp256k1)
        );
        vm.prank(alice);
        registry.register(0, 1_000, ZONE, proof);
        vm.chainId(home);
        vm.prank(alice);
        registry.register(0, 1_000, ZONE, proof);
    }

    // ─── Meter units (device attestations) ────────────────────────────────────────────────

    function expectUnitRefused() internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
            )
        );
    }

    function test_meterUnit_signedForAnotherChain_refused() public {
        uint256 requestId = postTamperedReport();
        IDisputeResolver.MeterUnit memory u = signSecpFor(
            unit(aliceDevice, firstStart, aliceSignedValues()), ALICE_DEVICE_KEY, block.chainid + 1, address(registry)
        );
        expectUnitRefused();
        dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);
    }

    function test_meterUnit_signedForAnotherRegistryOrTheResolver_refused() public {
        uint256 requestId = postTamperedReport();
        IDisputeResolver.MeterUnit memory u = unit(aliceDevice, firstStart, aliceSignedValues());
        address[2] memory wrong = [address(new DeviceRegistry()), address(dispute)];
        for (uint256 i; i < wrong.length; ++i) {
            u = signSecpFor(u, ALICE_DEVICE_KEY, block.chainid, wrong[i]);
            expectUnitRefused();
            dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);
        }
    }

    function test_meterUnit_ofAnotherDevice_refused() public {
        uint256 requestId = postTamperedReport();
        // Bob's device signing alice's values does not speak for alice's device.
        IDisputeResolver.MeterUnit memory u = signSecp(unit(bobDevice, firstStart, aliceSignedValues()), 0xD2);
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.UnitDeviceMismatch.selector, bobDevice, aliceDevice));
        dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);
    }

    // ─── Challenge evidence ───────────────────────────────────────────────────────────────

    function test_evidence_replayedAfterResolution_refused() public {
        uint256 requestId = postTamperedReport();
        uint256 id = challengeAlice(requestId);
        vm.warp(dispute.challengeOf(id).responseDeadline);
        dispute.resolve(id);
        // The executed challenge cannot run twice.
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ChallengeNotPending.selector, id, IDisputeResolver.ChallengeStatus.Resolved
            )
        );
        dispute.resolve(id);
        // The same evidence while no report is pending: nothing to dispute.
        IFlexMarket.Request memory r = market.request(requestId);
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.NotDisputable.selector, requestId, r.status, r.disputeEndsAt)
        );
        dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);

        // The two signers were slashed and unseated; governance lowers k to the honest one,
        // whose round-1 report commits to the correct readings: the round-0 evidence does
        // not prove against it.
        vm.prank(governance);
        committee.setThreshold(1);
        uint256[] memory honest = new uint256[](1);
        honest[0] = 2;
        bytes32 honestRoot = readingsLeaf(aliceDevice, packUsed(firstStart, 900, aliceSignedValues()));
        postReportWithRoot(requestId, wh(45_000, 48_000), honestRoot, honest);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.ReadingsProofInvalid.selector, requestId, aliceDevice, honestRoot)
        );
        dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);
    }

    function test_evidence_ofOneRequestAgainstAnother_refused() public {
        postTamperedReport();
        bytes memory evidence = aliceUsed;
        // Another request whose report commits to other readings.
        uint256 other = createRequest(defaultParams());
        placeBid(alice, other, 50_000, P20, ids(aliceDevice));
        clearRequest(other);
        bytes32 otherRoot = readingsLeaf(aliceDevice, packUsed(firstStart + 4 * 900, 900, aliceSignedValues()));
        postReportWithRoot(other, wh(50_000), otherRoot, twoSigners());
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.ReadingsProofInvalid.selector, other, aliceDevice, otherRoot)
        );
        dispute.challenge(other, aliceDevice, evidence, emptyProof, TAMPERED, u, TAMPERED);
    }

    function test_evidence_rebuttalCannotBeReplayed_andTheDeviceIsSpent() public {
        uint256 requestId = postTamperedReport();
        uint256 id = challengeAlice(requestId);
        // alice's device also signed the reported value: equivocation.
        int64[] memory reported = aliceSignedValues();
        reported[TAMPERED] = REPORTED_WH;
        IDisputeResolver.MeterUnit memory second = signSecp(unit(aliceDevice, firstStart, reported), ALICE_DEVICE_KEY);
        second.sequence = 43;
        second = signSecp(second, ALICE_DEVICE_KEY);
        dispute.rebut(id, second, TAMPERED);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ChallengeNotPending.selector, id, IDisputeResolver.ChallengeStatus.Rebutted
            )
        );
        dispute.rebut(id, second, TAMPERED);
        // The device's units back no further challenge.
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.DeviceEquivocated.selector, aliceDevice));
        dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);
    }
}
