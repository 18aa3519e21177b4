// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @notice The few forge cheatcodes GridFlex tests use (forge-std does not build offline).
/// @dev Signatures follow forge's cheatcode ABI; add more here when a test needs them.
interface Vm {
    /// @dev Layout of forge's recorded log (see `recordLogs` / `getRecordedLogs`).
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function warp(uint256 timestamp) external;
    function roll(uint256 blockNumber) external;
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 revertData) external;
    function expectRevert() external;
    function expectPartialRevert(bytes4 revertData) external;
    function expectRevert(bytes calldata revertData, address reverter) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
    function expectEmit() external;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);
    function cool(address target) external;
    function expectEmit(address emitter) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter)
        external;
    function chainId(uint256 newChainId) external;
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function signP256(uint256 privateKey, bytes32 digest) external pure returns (bytes32 r, bytes32 s);
    function publicKeyP256(uint256 privateKey) external pure returns (uint256 publicKeyX, uint256 publicKeyY);
    function addr(uint256 privateKey) external pure returns (address);
    function assume(bool condition) external pure;
    function label(address account, string calldata newLabel) external;
    function deal(address account, uint256 newBalance) external;
    function startSnapshotGas(string calldata name) external;
    function startSnapshotGas(string calldata group, string calldata name) external;
    function snapshotGasLastCall(string calldata group, string calldata name) external returns (uint256 gasUsed);
    function stopSnapshotGas() external returns (uint256 gasUsed);
    function snapshotValue(string calldata group, string calldata name, uint256 value) external;
    function snapshotGasLastCall(string calldata name) external returns (uint256 gasUsed);
    function toString(uint256 value) external pure returns (string memory);
    function toString(address value) external pure returns (string memory);
    function toString(bytes32 value) external pure returns (string memory);
}
