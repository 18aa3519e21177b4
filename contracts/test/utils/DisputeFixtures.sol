// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "./Deployers.sol";
import {IDisputeResolver} from "../../interfaces/IDisputeResolver.sol";

/// @notice Builders for fraud-proof tests, written independently of DisputeResolver so that
///         the tests check the contract against the formats of gridflex/attestation.py and
///         gridflex/reports.py rather than against itself.
abstract contract DisputeFixtures is Deployers {
    uint256 internal constant P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551;
    bytes32 internal constant METER_TYPEHASH = keccak256(
        "MeterReadings(uint256 deviceId,uint64 firstIntervalStart,uint32 intervalSeconds,uint64 sequence,bytes energyWh)"
    );

    /// @notice abi.encodePacked(uint64 intervalStart, int64 energyWh) per reading, on the grid.
    function packUsed(uint256 firstStart, uint256 interval, int64[] memory values)
        internal
        pure
        returns (bytes memory out)
    {
        for (uint256 i; i < values.length; ++i) {
            out = bytes.concat(out, abi.encodePacked(uint64(firstStart + i * interval), values[i]));
        }
    }

    /// @notice int64 big-endian, 8 bytes per value (a unit's `energyWh`).
    function packEnergy(int64[] memory values) internal pure returns (bytes memory out) {
        for (uint256 i; i < values.length; ++i) {
            out = bytes.concat(out, abi.encodePacked(values[i]));
        }
    }

    function readingsLeaf(uint256 deviceId, bytes memory used) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(deviceId, keccak256(used)))));
    }

    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encodePacked(a, b)) : keccak256(abi.encodePacked(b, a));
    }

    /// @notice The root `leaf` reaches through `proof` (what MerkleProof computes).
    function rootOf(bytes32 leaf, bytes32[] memory proof) internal pure returns (bytes32 node) {
        node = leaf;
        for (uint256 i; i < proof.length; ++i) {
            node = hashPair(node, proof[i]);
        }
    }

    function meterDigest(IDisputeResolver.MeterUnit memory u, uint256 chainId, address verifyingContract)
        internal
        pure
        returns (bytes32)
    {
        bytes32 domainSeparator = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("GridFlex Meter"),
                keccak256("1"),
                chainId,
                verifyingContract
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                METER_TYPEHASH, u.deviceId, u.firstIntervalStart, u.intervalSeconds, u.sequence, keccak256(u.energyWh)
            )
        );
        return keccak256(abi.encodePacked(hex"1901", domainSeparator, structHash));
    }

    function unit(uint256 deviceId, uint256 firstStart, int64[] memory values)
        internal
        pure
        returns (IDisputeResolver.MeterUnit memory u)
    {
        u = IDisputeResolver.MeterUnit({
            deviceId: deviceId,
            firstIntervalStart: uint64(firstStart),
            intervalSeconds: 900,
            sequence: 42,
            energyWh: packEnergy(values),
            signature: ""
        });
    }

    /// @notice Signs `u` (secp256k1) for this chain and the registry, as a node does.
    function signSecp(IDisputeResolver.MeterUnit memory u, uint256 key)
        internal
        view
        returns (IDisputeResolver.MeterUnit memory)
    {
        return signSecpFor(u, key, block.chainid, address(registry));
    }

    function signSecpFor(IDisputeResolver.MeterUnit memory u, uint256 key, uint256 chainId, address verifying)
        internal
        pure
        returns (IDisputeResolver.MeterUnit memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, meterDigest(u, chainId, verifying));
        u.signature = abi.encodePacked(r, s, v);
        return u;
    }

    /// @notice Signs `u` with a P-256 key, s normalised to the low half unless `highS`.
    function signP256(IDisputeResolver.MeterUnit memory u, uint256 key, bool highS)
        internal
        view
        returns (IDisputeResolver.MeterUnit memory)
    {
        (bytes32 r, bytes32 s) = vm.signP256(key, meterDigest(u, block.chainid, address(registry)));
        bool isHigh = uint256(s) > P256_N / 2;
        if (isHigh != highS) s = bytes32(P256_N - uint256(s));
        u.signature = abi.encodePacked(r, s);
        return u;
    }

    /// @notice Signs the report of the request's current round with `readingsRoot` and posts it
    ///         at (or after) the window end.
    function postReportWithRoot(
        uint256 requestId,
        uint256[] memory deliveredWh,
        bytes32 readingsRoot,
        uint256[] memory signerIdx
    ) internal {
        uint16 round = market.request(requestId).reportRound;
        bytes[] memory sigs = signReport(requestId, round, deliveredWh, bytes32("devices"), readingsRoot, signerIdx);
        uint256 windowEnd = market.request(requestId).windowEnd;
        if (block.timestamp < windowEnd) vm.warp(windowEnd);
        market.submitReport(requestId, deliveredWh, bytes32("devices"), readingsRoot, sigs);
    }
}
