// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @notice A Merkle tree over given leaf hashes with OpenZeppelin's sorted-pair hashing (what
///         MerkleProof verifies), built independently of gridflex/rules/merkle.py: adjacent
///         pairs, an odd last node carried up.
library TestMerkle {
    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encodePacked(a, b)) : keccak256(abi.encodePacked(b, a));
    }

    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory level = leaves;
        while (level.length > 1) {
            level = nextLevel(level);
        }
        return level[0];
    }

    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory path) {
        bytes32[] memory siblings = new bytes32[](64);
        uint256 depth = 0;
        bytes32[] memory level = leaves;
        while (level.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < level.length) siblings[depth++] = level[sibling];
            level = nextLevel(level);
            index /= 2;
        }
        path = new bytes32[](depth);
        for (uint256 i; i < depth; ++i) {
            path[i] = siblings[i];
        }
    }

    function nextLevel(bytes32[] memory level) private pure returns (bytes32[] memory next) {
        next = new bytes32[]((level.length + 1) / 2);
        for (uint256 i; i < next.length; ++i) {
            next[i] = 2 * i + 1 < level.length ? hashPair(level[2 * i], level[2 * i + 1]) : level[2 * i];
        }
    }
}
