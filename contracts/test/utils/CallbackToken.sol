// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";

/// @notice Hooks of an ERC777/ERC1363-style token: the sender is called before its balance
///         moves, the receiver after. Only accounts that opted in are called.
interface ITokenHooks {
    function tokensToSend(address from, address to, uint256 amount) external;
    function tokensReceived(address from, address to, uint256 amount) external;
}

/// @notice A settlement token that calls back into sender and receiver on every transfer
///         (the ERC777 pattern behind many reentrancy exploits).
contract CallbackToken {
    string public constant name = "Callback Euro";
    string public constant symbol = "cbEUR";
    uint8 public constant decimals = 6;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    /// @dev Accounts whose hooks are called.
    mapping(address => bool) public hooked;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function setHooked(bool on) external {
        hooked[msg.sender] = on;
    }

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= amount, "allowance");
        if (allowed != type(uint256).max) allowance[from][msg.sender] = allowed - amount;
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) private {
        if (hooked[from]) ITokenHooks(from).tokensToSend(from, to, amount);
        require(balanceOf[from] >= amount, "balance");
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
        if (hooked[to]) ITokenHooks(to).tokensReceived(from, to, amount);
    }
}

/// @notice A grid operator contract that re-enters FlexMarket from the token hooks.
/// @dev `reenterData` is called on the market from the hook (once). With `bubble` the hook
///      reverts with the reentrant call's error, otherwise it records the outcome and lets
///      the outer call finish.
contract ReentrantOperator is ITokenHooks {
    IFlexMarket public immutable market;
    CallbackToken public immutable token;
    bytes public reenterData;
    bool public bubble;
    bool public onSend;
    bool public armed;
    bool public reentryOk;
    bytes public reentryResult;
    uint256 public reentries;

    constructor(IFlexMarket market_, CallbackToken token_) {
        market = market_;
        token = token_;
        token_.approve(address(market_), type(uint256).max);
        token_.setHooked(true);
    }

    /// @param onSend_ re-enter from `tokensToSend` (escrow pulled) instead of `tokensReceived`
    function arm(bytes calldata data, bool bubble_, bool onSend_) external {
        reenterData = data;
        bubble = bubble_;
        onSend = onSend_;
        armed = true;
    }

    function createRequest(IFlexMarket.RequestParams calldata p) external returns (uint256) {
        return market.createRequest(p);
    }

    function cancelRequest(uint256 requestId) external {
        market.cancelRequest(requestId);
    }

    function withdraw() external returns (uint256) {
        return market.withdraw(address(token));
    }

    function tokensToSend(address, address, uint256) external {
        if (onSend) _reenter();
    }

    function tokensReceived(address, address, uint256) external {
        if (!onSend) _reenter();
    }

    function _reenter() private {
        if (!armed || msg.sender != address(token)) return;
        armed = false;
        reentries += 1;
        (bool ok, bytes memory result) = address(market).call(reenterData);
        reentryOk = ok;
        reentryResult = result;
        if (!ok && bubble) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }
}
