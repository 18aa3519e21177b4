// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "./TestBase.sol";
import {FlexToken} from "../../FlexToken.sol";
import {DeviceRegistry} from "../../DeviceRegistry.sol";
import {Staking, IDisputeWindowSource} from "../../Staking.sol";
import {OracleCommittee} from "../../OracleCommittee.sol";
import {FlexMarket} from "../../FlexMarket.sol";
import {DisputeResolver} from "../../DisputeResolver.sol";
import {DeliveryDispute} from "../../DeliveryDispute.sol";
import {PoolRegistry} from "../../PoolRegistry.sol";
import {IDeviceRegistry} from "../../interfaces/IDeviceRegistry.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";
import {IStaking} from "../../interfaces/IStaking.sol";
import {IOracleCommittee} from "../../interfaces/IOracleCommittee.sol";

/// @notice A settlement token for tests, mintable by anyone (a stand-in for a stablecoin).
contract TestStablecoin {
    string public constant name = "Test Euro";
    string public constant symbol = "tEUR";
    uint8 public constant decimals = 6;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

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
        return _move(msg.sender, to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= amount, "allowance");
        if (allowed != type(uint256).max) allowance[from][msg.sender] = allowed - amount;
        return _move(from, to, amount);
    }

    function _move(address from, address to, uint256 amount) private returns (bool) {
        require(balanceOf[from] >= amount, "balance");
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
        return true;
    }
}

/// @notice Shared fixture: the whole protocol deployed and wired as `gridflex deploy` does
///         (the DisputeResolver holds both DISPUTE_ROLEs, Staking.SLASHER_ROLE and LOCKER_ROLE), three staked oracles at threshold 2, a grid operator, and helpers for the life of
///         an event. Tests inherit it and call `deployProtocol()` in `setUp`.
abstract contract Deployers is TestBase {
    uint256 internal constant FLEX = 1e18;
    uint256 internal constant EUR = 1e6;
    uint64 internal constant UNBONDING = 3 days;
    uint64 internal constant DISPUTE_WINDOW = 1 days;
    uint128 internal constant ORACLE_BOND = 1_000 * 1e18;
    bytes32 internal constant ZONE = keccak256("NL-AMS-01");
    uint40 internal constant T0 = 1_800_000_000; // a quarter-hour boundary (2027-01-15)

    address internal governance = address(0x60F);
    address internal treasury = address(0x7EA5);
    address internal gridOperator = address(0xD50);

    FlexToken internal flex;
    TestStablecoin internal eur;
    DeviceRegistry internal registry;
    Staking internal staking;
    OracleCommittee internal committee;
    FlexMarket internal market;
    PoolRegistry internal pools;
    DisputeResolver internal dispute;
    DeliveryDispute internal delivery;

    uint256[3] internal oracleKeys = [uint256(0xA11CE), uint256(0xB0B), uint256(0xCA401)];
    address[3] internal oracles;

    function deployProtocol() internal {
        vm.warp(T0);
        flex = new FlexToken(governance, 1_000_000_000 * FLEX);
        eur = new TestStablecoin();
        registry = new DeviceRegistry();
        staking = new Staking(flex, governance, treasury, UNBONDING);
        committee = new OracleCommittee(governance, staking, ORACLE_BOND);
        pools = new PoolRegistry(registry);
        registry.setPools(address(pools));
        market = new FlexMarket(governance, registry, staking, committee, pools, treasury);
        pools.setMarket(market);
        dispute = new DisputeResolver(governance, market, committee, registry);
        delivery = new DeliveryDispute(market, committee, registry, dispute);

        vm.startPrank(governance);
        staking.grantRole(staking.LOCKER_ROLE(), address(market));
        staking.grantRole(staking.SLASHER_ROLE(), address(market));
        staking.grantRole(staking.LOCKER_ROLE(), address(committee));
        staking.grantRole(staking.SLASHER_ROLE(), address(committee));
        staking.setDisputeWindowSource(IDisputeWindowSource(address(market)));
        market.setDisputeWindow(DISPUTE_WINDOW);
        market.grantRole(market.GRID_OPERATOR_ROLE(), gridOperator);
        market.grantRole(market.DISPUTE_ROLE(), address(dispute));
        committee.grantRole(committee.DISPUTE_ROLE(), address(dispute));
        staking.grantRole(staking.SLASHER_ROLE(), address(dispute));
        staking.grantRole(staking.LOCKER_ROLE(), address(dispute));
        market.grantRole(market.DISPUTE_ROLE(), address(delivery));
        committee.grantRole(committee.DISPUTE_ROLE(), address(delivery));
        vm.stopPrank();

        // Each seat sets the threshold for the new size: 1 of 1, 2 of 2, 2 of 3.
        uint8[3] memory thresholds = [uint8(1), 2, 2];
        for (uint256 i; i < 3; ++i) {
            oracles[i] = vm.addr(oracleKeys[i]);
            fundAndStake(oracles[i], ORACLE_BOND);
            vm.prank(governance);
            committee.addOracle(oracles[i], thresholds[i]);
        }

        eur.mint(gridOperator, 1_000_000 * EUR);
        vm.prank(gridOperator);
        eur.approve(address(market), type(uint256).max);
    }

    // ─── Actors ───────────────────────────────────────────────────────────────────────────

    function fundAndStake(address account, uint256 amount) internal {
        vm.prank(governance);
        flex.transfer(account, amount);
        vm.startPrank(account);
        flex.approve(address(staking), amount);
        staking.stake(amount);
        vm.stopPrank();
    }

    /// @notice Gives `who` enough free stake for `challenges` challenge bonds.
    function stakeForChallenges(address who, uint256 challenges) internal {
        fundAndStake(who, challenges * dispute.challengeBond());
    }

    /// @notice Registers a secp256k1-keyed device for `owner` with a valid proof.
    function registerDevice(address owner, uint256 deviceKey, uint48 capacityW, bytes32 zone)
        internal
        returns (uint256 deviceId)
    {
        IDeviceRegistry.DeviceKey memory key = secpKey(owner, deviceKey);
        vm.prank(owner);
        deviceId = registry.register(uint8(IDeviceRegistry.DeviceKind.Battery), capacityW, zone, key);
    }

    /// @notice `owner`'s (key `ownerKey`) EIP-712 consent to enrol `deviceIds` in `poolId`.
    function signConsent(uint256 ownerKey, uint256 poolId, uint256[] memory deviceIds, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        bytes32 digest = pools.consentDigest(poolId, vm.addr(ownerKey), deviceIds, nonce, deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @notice Enrols `deviceIds` of the owner with key `ownerKey` in `poolId`, by its operator.
    function enrollDevices(address operator, uint256 poolId, uint256 ownerKey, uint256[] memory deviceIds) internal {
        address owner = vm.addr(ownerKey);
        uint256 nonce = pools.nonces(owner);
        bytes memory signature = signConsent(ownerKey, poolId, deviceIds, nonce, block.timestamp + 1 days);
        vm.prank(operator);
        pools.enroll(poolId, owner, deviceIds, nonce, block.timestamp + 1 days, signature);
    }

    /// @notice A complete two-step transfer: `from` offers the device, `to` accepts it with a
    ///         fresh secp256k1 key `newDeviceKey` (the registry refuses the current key).
    function transferDevice(uint256 deviceId, address from, address to, uint256 newDeviceKey) internal {
        vm.prank(from);
        registry.transfer(deviceId, to);
        IDeviceRegistry.DeviceKey memory key = secpKey(to, newDeviceKey);
        vm.prank(to);
        registry.acceptTransfer(deviceId, key);
    }

    function secpKey(address owner, uint256 deviceKey) internal view returns (IDeviceRegistry.DeviceKey memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(deviceKey, registry.keyProofDigest(owner));
        return IDeviceRegistry.DeviceKey({
            keyType: uint8(IDeviceRegistry.KeyType.Secp256k1),
            data: abi.encodePacked(vm.addr(deviceKey)),
            proof: abi.encodePacked(r, s, v)
        });
    }

    /// @notice A P-256 key and its proof, with s normalised to the lower half of the order.
    function p256Key(address owner, uint256 deviceKey) internal view returns (IDeviceRegistry.DeviceKey memory) {
        (bytes32 r, bytes32 s) = vm.signP256(deviceKey, registry.keyProofDigest(owner));
        uint256 n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551;
        if (uint256(s) > n / 2) s = bytes32(n - uint256(s));
        (uint256 x, uint256 y) = vm.publicKeyP256(deviceKey);
        return IDeviceRegistry.DeviceKey({
            keyType: uint8(IDeviceRegistry.KeyType.P256), data: abi.encodePacked(x, y), proof: abi.encodePacked(r, s)
        });
    }

    // ─── Requests ─────────────────────────────────────────────────────────────────────────

    /// @notice 100 kW for one hour starting two hours from now, gate closure one hour ahead,
    ///         cap 0.30 tEUR/kWh, no availability price, MBMA, pay-as-bid.
    function defaultParams() internal view returns (IFlexMarket.RequestParams memory p) {
        uint40 start = uint40(block.timestamp - (block.timestamp % 900) + 2 hours);
        p = IFlexMarket.RequestParams({
            zone: ZONE,
            direction: uint8(IFlexMarket.Direction.ReduceConsumption),
            powerW: 100_000,
            windowStart: start,
            windowEnd: start + 1 hours,
            intervalSeconds: 900,
            priceCapPerKWh: uint128(300_000), // 0.30 tEUR (6 decimals)
            availabilityPricePerKWh: 0,
            gateClosure: start - 1 hours,
            baselineMethod: 0,
            pricingRule: uint8(IFlexMarket.PricingRule.PayAsBid),
            settlementToken: address(eur)
        });
    }

    function createRequest(IFlexMarket.RequestParams memory p) internal returns (uint256 requestId) {
        vm.prank(gridOperator);
        requestId = market.createRequest(p);
    }

    function placeBid(address bidder, uint256 requestId, uint48 powerW, uint96 price, uint256[] memory deviceIds)
        internal
        returns (uint256 bidIndex)
    {
        vm.prank(bidder);
        bidIndex = market.bid(requestId, powerW, price, deviceIds);
    }

    /// @notice The merit order `clear` expects: by price, then bid sequence (insertion sort).
    function meritOrder(uint256 requestId) internal view returns (uint16[] memory order) {
        uint256 count = market.request(requestId).bidCount;
        order = new uint16[](count);
        uint256[] memory keys = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            IFlexMarket.Bid memory b = market.bidOf(requestId, i);
            keys[i] = (uint256(b.pricePerKWh) << 24) | b.sequence;
            uint256 j = i;
            while (j > 0 && keys[order[j - 1]] > keys[i]) {
                order[j] = order[j - 1];
                --j;
            }
            order[j] = uint16(i);
        }
    }

    function clearRequest(uint256 requestId) internal {
        vm.warp(market.request(requestId).gateClosure);
        market.clear(requestId, meritOrder(requestId));
    }

    // ─── Reports ──────────────────────────────────────────────────────────────────────────

    /// @notice Signatures of the oracles at `signerIdx`, sorted by signer address.
    function signReport(
        uint256 requestId,
        uint16 round,
        uint256[] memory deliveredWh,
        bytes32 devicesRoot,
        bytes32 readingsRoot,
        uint256[] memory signerIdx
    ) internal view returns (bytes[] memory signatures) {
        bytes32 digest = committee.reportDigest(
            address(market), requestId, round, keccak256(abi.encodePacked(deliveredWh)), devicesRoot, readingsRoot
        );
        uint256 n = signerIdx.length;
        uint256[] memory keys = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            keys[i] = oracleKeys[signerIdx[i]];
        }
        for (uint256 i; i < n; ++i) {
            for (uint256 j = i + 1; j < n; ++j) {
                if (vm.addr(keys[j]) < vm.addr(keys[i])) (keys[i], keys[j]) = (keys[j], keys[i]);
            }
        }
        signatures = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[i], digest);
            signatures[i] = abi.encodePacked(r, s, v);
        }
    }

    function twoSigners() internal pure returns (uint256[] memory idx) {
        idx = new uint256[](2);
        idx[0] = 0;
        idx[1] = 1;
    }

    function submitReport(uint256 requestId, uint256[] memory deliveredWh) internal {
        uint16 round = market.request(requestId).reportRound;
        bytes[] memory sigs =
            signReport(requestId, round, deliveredWh, bytes32("devices"), bytes32("readings"), twoSigners());
        vm.warp(market.request(requestId).windowEnd);
        market.submitReport(requestId, deliveredWh, bytes32("devices"), bytes32("readings"), sigs);
    }

    function ids(uint256 a) internal pure returns (uint256[] memory out) {
        out = new uint256[](1);
        out[0] = a;
    }

    function ids(uint256 a, uint256 b) internal pure returns (uint256[] memory out) {
        out = new uint256[](2);
        out[0] = a;
        out[1] = b;
    }
}
