// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title FlexToken (FLEX)
/// @notice The GridFlex staking token. Device owners bond it behind their bids and oracles
///         behind their reports. Settlement of flexibility requests may use any ERC20.
/// @dev Fixed supply minted once at deployment; no owner, no mint, no pause.
contract FlexToken is ERC20, ERC20Permit {
    /// @param initialHolder receives the whole supply (governance treasury at launch)
    /// @param initialSupply total supply in base units (18 decimals)
    constructor(address initialHolder, uint256 initialSupply) ERC20("GridFlex Token", "FLEX") ERC20Permit("GridFlex Token") {
        _mint(initialHolder, initialSupply);
    }
}
