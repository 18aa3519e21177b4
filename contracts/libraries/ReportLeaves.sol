// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IDeliveryDispute} from "../interfaces/IDeliveryDispute.sol";

/// @title ReportLeaves
/// @notice The devices-tree leaf of a device record, as gridflex/rules/reports.py builds it
///         (OpenZeppelin StandardMerkleTree: keccak of keccak of the ABI-encoded fields):
///         what DeliveryDispute proves records against and PoolRegistry pays members from.
library ReportLeaves {
    function recordLeaf(IDeliveryDispute.DeviceRecord calldata record) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        record.deviceId,
                        record.bidIndex,
                        record.baselineWh,
                        record.meteredWh,
                        record.deliveredWh,
                        record.quality
                    )
                )
            )
        );
    }
}
