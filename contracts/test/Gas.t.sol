// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "./utils/Deployers.sol";
import {DisputeFixtures} from "./utils/DisputeFixtures.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";
import {IDisputeResolver} from "../interfaces/IDisputeResolver.sol";

/// @notice Gas of the protocol's hot paths, committed to snapshots/gridflex.json (forge writes
///         it on `forge test`; `FORGE_SNAPSHOT_CHECK=true forge test` fails on a drift) and
///         checked against the spec's targets.
/// @dev Each measurement is its own test contract whose `setUp` builds the state: setUp runs
///      as a separate transaction, so the measured call finds storage and accounts cold, as a
///      real transaction would. Figures are execution gas of the call (`forge test` and
///      `forge snapshot`); the transaction's 21,000 base cost and calldata are not included.
///      `--isolate` (which `--gas-report` turns on) runs every call as its own transaction
///      and measures whole transactions instead (base cost + calldata - refunds): in that
///      mode bid_5devices (~165.9k) and registerDeviceP256 (~140.0k) exceed their targets and
///      these two tests fail on purpose.
abstract contract GasBase is Deployers {
    string internal constant GROUP = "gridflex";
    uint256 internal constant REGISTRATION_TARGET = 120_000;
    /// @dev 150k before issue 12 finding 4: a bid now writes one live-commitment slot per
    ///      device (fresh devices ~22k each, 263.6k for five; GasMarket.t.sol measures 1, 5
    ///      reused and 64 devices).
    uint256 internal constant BID_TARGET = 275_000;
    uint256 internal constant REPORT_TARGET = 150_000;
    uint256 internal constant FINALIZE_PER_BID_TARGET = 60_000;
    uint256 internal constant WITHDRAW_TARGET = 50_000;
    /// @dev A fraud proof with a day of readings on both sides, void and a two-oracle slash.
    uint256 internal constant CHALLENGE_TARGET = 260_000;
    uint256 internal constant REBUT_TARGET = 150_000;
    uint256 internal constant RESOLVE_TARGET = 200_000;
    uint256 internal constant BIDS = 10;
    uint48 internal constant BID_W = 12_000;

    function provider(uint256 i) internal pure returns (address) {
        return address(uint160(0xF1E1D000 + i));
    }

    /// @dev A 120 kW request with ten 12 kW bids at ten prices: all awarded, the last at the margin.
    function tenBids() internal returns (uint256 requestId) {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = uint48(BIDS) * BID_W;
        requestId = createRequest(p);
        for (uint256 i; i < BIDS; ++i) {
            address who = provider(i);
            fundAndStake(who, 1_000 * FLEX);
            uint256 device = registerDevice(who, 0xDE1000 + i, 20_000, ZONE);
            placeBid(who, requestId, BID_W, uint96(100_000 + 10_000 * ((i * 7) % BIDS)), ids(device));
        }
    }

    function fullDelivery() internal pure returns (uint256[] memory delivered) {
        delivered = new uint256[](BIDS);
        // 12 kWh over the hour for every bid
        for (uint256 i; i < BIDS; ++i) {
            delivered[i] = BID_W;
        }
    }

    function threeSigners() internal pure returns (uint256[] memory idx) {
        idx = new uint256[](3);
        idx[0] = 0;
        idx[1] = 1;
        idx[2] = 2;
    }
}

contract GasRegisterDeviceTest is GasBase {
    address internal owner = address(0x0DE7);
    IDeviceRegistry.DeviceKey internal secp;
    IDeviceRegistry.DeviceKey internal p256;

    function setUp() public {
        deployProtocol();
        registerDevice(owner, 0xD1, 10_000, ZONE); // the owner's first device: steady state next
        registerDevice(address(0x0DE8), 0xD2, 10_000, ZONE);
        secp = secpKey(owner, 0xD3);
        p256 = p256Key(owner, 0xD4);
    }

    function test_gas_registerDevice_secondSecp256k1Device() public {
        IDeviceRegistry.DeviceKey memory key = secp;
        vm.startPrank(owner);
        vm.startSnapshotGas(GROUP, "registerDevice");
        registry.register(uint8(IDeviceRegistry.DeviceKind.HeatPump), 7_000, ZONE, key);
        uint256 used = vm.stopSnapshotGas();
        vm.stopPrank();
        assertLe(used, REGISTRATION_TARGET, "registerDevice");
    }

    function test_gas_registerDeviceP256() public {
        IDeviceRegistry.DeviceKey memory key = p256;
        vm.startPrank(owner);
        vm.startSnapshotGas(GROUP, "registerDeviceP256");
        registry.register(uint8(IDeviceRegistry.DeviceKind.Battery), 7_000, ZONE, key);
        uint256 used = vm.stopSnapshotGas();
        vm.stopPrank();
        assertLe(used, REGISTRATION_TARGET, "registerDeviceP256");
        assertEq(uint256(registry.device(3).keyType), uint256(IDeviceRegistry.KeyType.P256), "P-256 key stored");
    }
}

contract GasBidTest is GasBase {
    address internal bidder = address(0xB1D5);
    uint256 internal requestId;
    uint256[] internal devices;

    function setUp() public {
        deployProtocol();
        requestId = createRequest(defaultParams());
        // Someone else bid first: the request's bid counter is already non-zero.
        fundAndStake(provider(0), 1_000 * FLEX);
        placeBid(provider(0), requestId, 10_000, 150_000, ids(registerDevice(provider(0), 0xD0, 10_000, ZONE)));
        fundAndStake(bidder, 1_000 * FLEX);
        for (uint256 i; i < 5; ++i) {
            devices.push(registerDevice(bidder, 0xD1 + i, 10_000, ZONE));
        }
    }

    function test_gas_bid_fiveDevices() public {
        uint256[] memory deviceIds = devices;
        vm.startPrank(bidder);
        vm.startSnapshotGas(GROUP, "bid_5devices");
        market.bid(requestId, 50_000, 120_000, deviceIds);
        uint256 used = vm.stopSnapshotGas();
        vm.stopPrank();
        assertLe(used, BID_TARGET, "bid_5devices");
        assertEq(market.request(requestId).bidCount, 2, "second bid");
    }
}

contract GasClearTest is GasBase {
    uint256 internal requestId;
    uint16[] internal merit;

    function setUp() public {
        deployProtocol();
        requestId = tenBids();
        merit = meritOrder(requestId);
        vm.warp(market.request(requestId).gateClosure);
    }

    function test_gas_clear_tenBids() public {
        uint16[] memory order = merit;
        vm.startSnapshotGas(GROUP, "clear_10bids");
        market.clear(requestId, order);
        vm.stopSnapshotGas();
        assertEq(market.request(requestId).awardedW, uint48(BIDS) * BID_W, "all awarded");
    }
}

contract GasSubmitReportTest is GasBase {
    uint256 internal requestId;
    bytes[] internal signatures;

    function setUp() public {
        deployProtocol();
        requestId = tenBids();
        clearRequest(requestId);
        bytes[] memory sigs = signReport(requestId, 0, fullDelivery(), "devices", "readings", threeSigners());
        for (uint256 i; i < sigs.length; ++i) {
            signatures.push(sigs[i]);
        }
        vm.warp(market.request(requestId).windowEnd);
    }

    function test_gas_submitReport_threeSignaturesTenBids() public {
        bytes[] memory sigs = signatures;
        uint256[] memory delivered = fullDelivery();
        vm.startSnapshotGas(GROUP, "submitReport_3sigs_10bids");
        market.submitReport(requestId, delivered, "devices", "readings", sigs);
        uint256 used = vm.stopSnapshotGas();
        assertLe(used, REPORT_TARGET, "submitReport_3sigs_10bids");
        assertEq(market.request(requestId).signerBitmap, 7, "three signers");
    }
}

contract GasFinalizeTest is GasBase {
    uint256 internal requestId;

    function setUp() public {
        deployProtocol();
        requestId = tenBids();
        clearRequest(requestId);
        submitReport(requestId, fullDelivery());
        vm.warp(block.timestamp + DISPUTE_WINDOW);
    }

    function test_gas_finalize_tenBids() public {
        uint256[] memory delivered = fullDelivery();
        vm.startSnapshotGas(GROUP, "finalize_10bids");
        market.finalize(requestId, delivered);
        uint256 used = vm.stopSnapshotGas();
        vm.snapshotValue(GROUP, "finalize_10bids_perBid", used / BIDS);
        assertLe(used / BIDS, FINALIZE_PER_BID_TARGET, "finalize per bid");
        assertEq(uint256(market.request(requestId).status), uint256(IFlexMarket.RequestStatus.Settled), "settled");
    }
}

contract GasWithdrawTest is GasBase {
    address internal recipient;

    function setUp() public {
        deployProtocol();
        uint256 requestId = tenBids();
        clearRequest(requestId);
        submitReport(requestId, fullDelivery());
        vm.warp(block.timestamp + DISPUTE_WINDOW);
        market.finalize(requestId, fullDelivery());
        recipient = provider(3);
        eur.mint(recipient, 5 * EUR); // already holds the token
    }

    function test_gas_withdraw_recipientHoldsToken() public {
        address token = address(eur);
        vm.startPrank(recipient);
        vm.startSnapshotGas(GROUP, "withdraw");
        market.withdraw(token);
        uint256 used = vm.stopSnapshotGas();
        vm.stopPrank();
        assertLe(used, WITHDRAW_TARGET, "withdraw");
    }
}

/// @dev The largest proof a node's unit allows: 96 used readings (a day of 15-minute
///      intervals, 1,536 bytes), a 96-interval signed unit (768 bytes), a readings tree of 128
///      devices (7 siblings), a secp256k1 device. `challenge` opens the challenge and extends
///      the dispute; `resolve` voids the report and slashes two oracles (four FLEX
///      transfers); `rebut` checks a second 96-interval unit and slashes the device owner
///      (two FLEX transfers).
contract GasChallengeTest is GasBase, DisputeFixtures {
    uint256 internal constant DEVICE_KEY = 0xDE96;
    uint256 internal constant INTERVALS = 96;
    uint256 internal constant DISPUTED = 90;
    uint256 internal requestId;
    uint256 internal deviceId;
    bytes internal used;
    bytes32[] internal proof;
    IDisputeResolver.MeterUnit internal signedUnit;
    IDisputeResolver.MeterUnit internal usedUnit;
    address internal challenger = address(0xC4A1);
    address internal rebutter = address(0xBE77);

    function setUp() public {
        deployProtocol();
        requestId = createRequest(defaultParams());
        address owner = provider(0);
        fundAndStake(owner, 1_000 * FLEX);
        vm.warp(T0 - 2 days); // registered before the readings of its 96-interval unit
        deviceId = registerDevice(owner, DEVICE_KEY, 200_000, ZONE);
        vm.warp(T0);
        placeBid(owner, requestId, 100_000, 150_000, ids(deviceId));
        clearRequest(requestId);
        fundAndStake(owner, 1_000 * FLEX); // free stake beyond the bid bond: the penalty's source

        uint256 windowEnd = market.request(requestId).windowEnd;
        uint256 first = windowEnd - INTERVALS * 900;
        int64[] memory values = new int64[](INTERVALS);
        for (uint256 i; i < INTERVALS; ++i) {
            values[i] = int64(int256(10_000 + i * 37));
        }
        signedUnit = signSecp(unit(deviceId, first, values), DEVICE_KEY);
        values[DISPUTED] = 1;
        usedUnit = signSecp(unit(deviceId, first, values), DEVICE_KEY); // the equivocation
        used = packUsed(first, 900, values);
        for (uint256 i; i < 7; ++i) {
            proof.push(keccak256(abi.encode("sibling", i)));
        }
        bytes32 root = rootOf(readingsLeaf(deviceId, used), proof);
        postReportWithRoot(requestId, ids(100_000), root, twoSigners());
        stakeForChallenges(challenger, 1); // the challenge bond
    }

    function _challenge() internal returns (uint256 challengeId) {
        vm.prank(challenger);
        challengeId = dispute.challenge(requestId, deviceId, used, proof, DISPUTED, signedUnit, DISPUTED);
    }

    function test_gas_challenge_96intervals() public {
        bytes memory readings = used;
        bytes32[] memory siblings = proof;
        IDisputeResolver.MeterUnit memory u = signedUnit;
        vm.startPrank(challenger);
        vm.startSnapshotGas(GROUP, "challenge_96intervals");
        dispute.challenge(requestId, deviceId, readings, siblings, DISPUTED, u, DISPUTED);
        uint256 used_ = vm.stopSnapshotGas();
        vm.stopPrank();
        assertLe(used_, CHALLENGE_TARGET, "challenge_96intervals");
        assertEq(dispute.pendingChallengeCount(requestId), 1, "pending");
    }

    function test_gas_resolve_2signers() public {
        uint256 id = _challenge();
        vm.warp(dispute.challengeOf(id).responseDeadline);
        vm.startSnapshotGas(GROUP, "resolve_2signers");
        dispute.resolve(id);
        uint256 used_ = vm.stopSnapshotGas();
        assertLe(used_, RESOLVE_TARGET, "resolve_2signers");
        assertEq(uint256(market.request(requestId).status), uint256(IFlexMarket.RequestStatus.Cleared), "voided");
        assertEq(flex.balanceOf(challenger), ORACLE_BOND, "challenger paid");
    }

    function test_gas_rebut_96intervals() public {
        uint256 id = _challenge();
        IDisputeResolver.MeterUnit memory u = usedUnit;
        vm.startPrank(rebutter);
        vm.startSnapshotGas(GROUP, "rebut_96intervals");
        dispute.rebut(id, u, DISPUTED);
        uint256 used_ = vm.stopSnapshotGas();
        vm.stopPrank();
        assertLe(used_, REBUT_TARGET, "rebut_96intervals");
        assertTrue(flex.balanceOf(rebutter) > 0, "rebutter paid");
    }
}
