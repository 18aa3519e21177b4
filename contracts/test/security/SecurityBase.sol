// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MarketTestBase} from "../utils/MarketTestBase.sol";
import {DisputeFixtures} from "../utils/DisputeFixtures.sol";
import {IDisputeResolver} from "../../interfaces/IDisputeResolver.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";

/// @notice Cheatcodes the security suite needs beyond utils/Vm.sol (same cheatcode address),
///         kept here so the shared interface stays small.
interface VmSecurity {
    function snapshotState() external returns (uint256 snapshotId);
    function revertToState(uint256 snapshotId) external returns (bool success);
    function readFile(string calldata path) external view returns (string memory data);
    function parseJsonKeys(string calldata json, string calldata key) external pure returns (string[] memory keys);
    function parseJson(string calldata json, string calldata key) external pure returns (bytes memory abiEncoded);
    function envOr(string calldata name, string calldata defaultValue) external view returns (string memory value);
    function projectRoot() external view returns (string memory path);
}

/// @notice The wired protocol (MarketTestBase: four staked providers) plus the builders of
///         fraud proofs, and one helper that brings a request to a challengeable report: alice
///         and bob awarded, oracles 0 and 1 sign a report whose only used-readings leaf is
///         alice's, with her reading `TAMPERED` changed from what her device signed.
abstract contract SecurityBase is MarketTestBase, DisputeFixtures {
    VmSecurity internal constant vmx = VmSecurity(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant ALICE_DEVICE_KEY = 0xD1; // MarketTestBase: addProvider(alice, 0xD1)
    uint256 internal constant TAMPERED = 1;
    int64 internal constant SIGNED_WH = 1_500;
    int64 internal constant REPORTED_WH = 500;

    address internal stranger = address(0x5757);
    address internal challenger = address(0xC4A1);

    /// @dev Filled by `postTamperedReport`.
    bytes internal aliceUsed;
    bytes32[] internal emptyProof;
    uint256 internal firstStart;

    function aliceSignedValues() internal pure returns (int64[] memory values) {
        values = new int64[](3);
        values[0] = 12_000;
        values[1] = SIGNED_WH;
        values[2] = 2_000;
    }

    /// @notice A cleared request (alice 50 kW at 0.20, bob 50 kW at 0.25) with a pending report
    ///         signed by oracles 0 and 1 whose readings root commits to alice's tampered readings.
    function postTamperedReport() internal returns (uint256 requestId) {
        IFlexMarket.RequestParams memory p = defaultParams();
        requestId = createRequest(p);
        placeBid(alice, requestId, 50_000, P20, ids(aliceDevice));
        placeBid(bob, requestId, 50_000, P25, ids(bobDevice));
        clearRequest(requestId);
        firstStart = p.windowStart - 900;
        int64[] memory reported = aliceSignedValues();
        reported[TAMPERED] = REPORTED_WH;
        aliceUsed = packUsed(firstStart, 900, reported);
        // One leaf: the root is the leaf and the proof is empty (OpenZeppelin MerkleProof).
        postReportWithRoot(requestId, wh(45_000, 48_000), readingsLeaf(aliceDevice, aliceUsed), twoSigners());
        stakeForChallenges(challenger, 1); // the challenge bond
    }

    /// @notice The address an ECDSA r||s||v signature recovers to for `digest`.
    function recovered(bytes32 digest, bytes memory signature) internal pure returns (address) {
        (bytes32 r, bytes32 s) = abi.decode(signature, (bytes32, bytes32));
        return ecrecover(digest, uint8(signature[64]), r, s);
    }

    function aliceUnit() internal view returns (IDisputeResolver.MeterUnit memory) {
        return signSecp(unit(aliceDevice, firstStart, aliceSignedValues()), ALICE_DEVICE_KEY);
    }

    function challengeAlice(uint256 requestId) internal returns (uint256 challengeId) {
        vm.prank(challenger);
        challengeId = dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, aliceUnit(), TAMPERED);
    }
}
