// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {DisputeFixtures} from "./DisputeFixtures.sol";
import {IDeliveryDispute} from "../../interfaces/IDeliveryDispute.sol";

/// @notice The protocol with DeliveryDispute wired as gridflex/chain/deploy.py wires it (both
///         DISPUTE_ROLEs), plus builders for device records and used readings written from the
///         formats of gridflex/reports.py, independently of the contract.
abstract contract DeliveryFixtures is DisputeFixtures {
    uint256 internal constant DAY = 86_400;
    uint256 internal constant INTERVAL = 900;
    uint8 internal constant OK = 0;
    uint8 internal constant FALLBACK = 1;
    uint8 internal constant INSUFFICIENT = 2;
    uint8 internal constant CONFLICT = 3;

    /// @dev `deployProtocol` deploys and wires DeliveryDispute as gridflex/chain/deploy.py does.
    function deployWithDelivery() internal {
        deployProtocol();
    }

    function record(uint256 deviceId, uint16 bidIndex, int256 baseline, int256 metered, int256 delivered, uint8 q)
        internal
        pure
        returns (IDeliveryDispute.DeviceRecord memory)
    {
        return IDeliveryDispute.DeviceRecord(deviceId, bidIndex, baseline, metered, delivered, q);
    }

    function recordLeaf(IDeliveryDispute.DeviceRecord memory r) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(abi.encode(r.deviceId, r.bidIndex, r.baselineWh, r.meteredWh, r.deliveredWh, r.quality))
            )
        );
    }

    /// @notice A used-readings buffer of `count` 16-byte pairs, filled with `put`.
    function usedBuffer(uint256 count) internal pure returns (bytes memory) {
        return new bytes(count * 16);
    }

    /// @notice Writes pair `i` as abi.encodePacked(uint64 intervalStart, int64 energyWh).
    function put(bytes memory buffer, uint256 i, uint256 intervalStart, int256 energyWh) internal pure {
        uint256 word = (uint256(uint64(intervalStart)) << 192) | (uint256(uint64(int64(energyWh))) << 128);
        assembly ("memory-safe") {
            let slot := add(add(buffer, 32), mul(i, 16))
            let kept := and(mload(add(slot, 16)), 0xffffffffffffffffffffffffffffffff)
            mstore(slot, or(word, kept))
        }
    }

    /// @notice A two-leaf StandardMerkleTree: its root and each leaf's proof.
    function pairTree(bytes32 a, bytes32 b)
        internal
        pure
        returns (bytes32 root, bytes32[] memory proofA, bytes32[] memory proofB)
    {
        root = hashPair(a, b);
        proofA = new bytes32[](1);
        proofA[0] = b;
        proofB = new bytes32[](1);
        proofB[0] = a;
    }

    /// @notice Signs and posts the current round's report with both roots at the window end.
    function postRoots(uint256 requestId, uint256[] memory deliveredWh, bytes32 devicesRoot, bytes32 readingsRoot)
        internal
    {
        uint16 round = market.request(requestId).reportRound;
        bytes[] memory sigs = signReport(requestId, round, deliveredWh, devicesRoot, readingsRoot, twoSigners());
        uint256 windowEnd = market.request(requestId).windowEnd;
        if (block.timestamp < windowEnd) vm.warp(windowEnd);
        market.submitReport(requestId, deliveredWh, devicesRoot, readingsRoot, sigs);
    }

    function one(uint256 value) internal pure returns (uint256[] memory out) {
        out = new uint256[](1);
        out[0] = value;
    }
}
