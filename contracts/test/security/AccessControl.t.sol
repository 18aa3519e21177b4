// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {SecurityBase} from "./SecurityBase.sol";
import {IDisputeWindowSource} from "../../Staking.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";
import {IDeviceRegistry} from "../../interfaces/IDeviceRegistry.sol";
import {IDisputeResolver} from "../../interfaces/IDisputeResolver.sol";
import {IDeliveryDispute} from "../../interfaces/IDeliveryDispute.sol";
import {IPoolRegistry} from "../../interfaces/IPoolRegistry.sol";

/// @notice Access-control matrix: every state-changing external function of every protocol
///         contract is either public by design or gated; every gated one is called by every
///         actor, and exactly the intended callers get through while everyone else gets the
///         gate's custom error. The function list is read from the compiled ABIs, so a new
///         function that nobody classified fails `test_everyStateChangingFunctionIsClassified`.
contract AccessControlTest is SecurityBase {
    /// @dev How a function decides who may call it.
    enum Gate {
        Public, // anyone; acts on the caller's own funds or is a permissionless step
        Role, // OpenZeppelin AccessControl role: AccessControlUnauthorizedAccount
        DeviceOwner, // the device's owner: NotDeviceOwner
        PendingOwner, // the account a device is offered to: NotPendingOwner
        RequestOperator, // the grid operator that posted the request: NotRequestOperator
        Self, // renounceRole: only for one's own account, AccessControlBadConfirmation
        Deployer, // one-shot wiring, done at deployment: nobody after it
        PoolsContract, // the PoolRegistry only: NotPools
        MarketContract, // FlexMarket only: NotMarket
        PoolOperator, // the pool's operator: NotPoolOperator
        MemberOrOperator // the device's owner or its pool's operator: NotOwnerOrOperator
    }

    struct Entry {
        string contractName;
        address target;
        string signature;
        Gate gate;
        bytes32 role;
        bytes data;
    }

    Entry[] internal entries;
    address[] internal actors;
    string[] internal actorNames;
    /// @dev The intended role holders: contract => role => account => holds.
    mapping(address => mapping(bytes32 => mapping(address => bool))) internal intended;

    uint256 internal openRequestId;
    uint256 internal reportedRequestId;

    bytes32 internal constant ADMIN = 0x00; // DEFAULT_ADMIN_ROLE
    address internal poolOperator = address(0x9001);
    uint256 internal constant MEMBER_KEY = 0x3E3B;
    address internal member;
    uint256 internal memberDevice;
    uint256 internal spareDevice;
    uint256 internal poolId;

    function setUp() public {
        // The protocol exactly as `gridflex deploy` wires it (no extra test roles).
        deployProtocol();
        addProvider(alice, ALICE_DEVICE_KEY);
        aliceDevice = 1;
        addProvider(bob, 0xD2);
        bobDevice = 2;

        openRequestId = createRequest(defaultParams());
        reportedRequestId = createRequest(defaultParams());
        placeBid(alice, reportedRequestId, 50_000, P20, ids(aliceDevice));
        clearRequest(reportedRequestId);
        postReport(reportedRequestId, wh(50_000), twoSigners());
        // Back before the open request's gate closure; the report's window is still open.
        vm.warp(T0 + 10);
        // alice offers her device to the stranger: only the stranger may accept it.
        vm.prank(alice);
        registry.transfer(aliceDevice, stranger);

        // A pool with one member (10 kW) and one more device of the member, not enrolled.
        member = vm.addr(MEMBER_KEY);
        memberDevice = registerDevice(member, 0x3E3C, 10_000, ZONE);
        spareDevice = registerDevice(member, 0x3E3D, 10_000, ZONE);
        fundAndStake(poolOperator, PROVIDER_STAKE);
        vm.prank(poolOperator);
        poolId = pools.createPool(2_000, "VPP");
        enrollDevices(poolOperator, poolId, MEMBER_KEY, ids(memberDevice));
        vm.warp(block.timestamp + 1); // a pool bids in a later block than its last join

        _addActor(governance, "governance");
        _addActor(gridOperator, "grid operator");
        _addActor(oracles[0], "oracle");
        _addActor(alice, "device owner");
        _addActor(stranger, "stranger");
        _addActor(treasury, "treasury");
        _addActor(address(market), "FlexMarket");
        _addActor(address(committee), "OracleCommittee");
        _addActor(address(dispute), "DisputeResolver");
        _addActor(address(delivery), "DeliveryDispute");
        _addActor(poolOperator, "pool operator");
        _addActor(member, "pool member");
        _addActor(address(pools), "PoolRegistry");

        _intend();
        _classify();
    }

    // ─── The specification ────────────────────────────────────────────────────────────────

    /// @dev Who should hold which role after deployment (gridflex/chain/deploy.py).
    function _intend() internal {
        intended[address(staking)][ADMIN][governance] = true;
        intended[address(staking)][staking.LOCKER_ROLE()][address(market)] = true;
        intended[address(staking)][staking.LOCKER_ROLE()][address(committee)] = true;
        intended[address(staking)][staking.SLASHER_ROLE()][address(market)] = true;
        intended[address(staking)][staking.SLASHER_ROLE()][address(committee)] = true;
        intended[address(staking)][staking.SLASHER_ROLE()][address(dispute)] = true;
        intended[address(staking)][staking.LOCKER_ROLE()][address(dispute)] = true;
        intended[address(committee)][ADMIN][governance] = true;
        intended[address(committee)][committee.DISPUTE_ROLE()][address(dispute)] = true;
        intended[address(committee)][committee.DISPUTE_ROLE()][address(delivery)] = true;
        intended[address(market)][ADMIN][governance] = true;
        intended[address(market)][market.GRID_OPERATOR_ROLE()][gridOperator] = true;
        intended[address(market)][market.DISPUTE_ROLE()][address(dispute)] = true;
        intended[address(market)][market.DISPUTE_ROLE()][address(delivery)] = true;
        intended[address(dispute)][ADMIN][governance] = true;
    }

    function _classify() internal {
        // FlexToken: no owner, no mint, no pause; ERC20 and permit act on the caller's funds.
        _public("FlexToken", address(flex), "transfer(address,uint256)", abi.encodeCall(flex.transfer, (alice, 0)));
        _public("FlexToken", address(flex), "approve(address,uint256)", abi.encodeCall(flex.approve, (alice, 1)));
        _public(
            "FlexToken",
            address(flex),
            "transferFrom(address,address,uint256)",
            abi.encodeCall(flex.transferFrom, (governance, stranger, 1))
        );
        _public(
            "FlexToken",
            address(flex),
            "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
            abi.encodeCall(flex.permit, (governance, stranger, 1, block.timestamp, 27, bytes32(0), bytes32(0)))
        );

        // DeviceRegistry: anyone registers; only the owner changes a device.
        _public(
            "DeviceRegistry",
            address(registry),
            "register(uint8,uint48,bytes32,(uint8,bytes,bytes))",
            abi.encodeCall(registry.register, (0, 1_000, ZONE, secpKey(stranger, 0x5157)))
        );
        _public(
            "DeviceRegistry",
            address(registry),
            "registerBatch(uint8,uint48,bytes32,(uint8,bytes,bytes)[])",
            abi.encodeCall(registry.registerBatch, (0, 1_000, ZONE, _strangerKeys()))
        );
        _gated(
            "DeviceRegistry",
            address(registry),
            "update(uint256,uint48,bytes32)",
            Gate.DeviceOwner,
            0,
            abi.encodeCall(registry.update, (aliceDevice, 100_000, ZONE))
        );
        _gated(
            "DeviceRegistry",
            address(registry),
            "rotateKey(uint256,(uint8,bytes,bytes))",
            Gate.DeviceOwner,
            0,
            abi.encodeCall(registry.rotateKey, (aliceDevice, secpKey(alice, 0xD1D1)))
        );
        _gated(
            "DeviceRegistry",
            address(registry),
            "setActive(uint256,bool)",
            Gate.DeviceOwner,
            0,
            abi.encodeCall(registry.setActive, (aliceDevice, false))
        );
        _gated(
            "DeviceRegistry",
            address(registry),
            "transfer(uint256,address)",
            Gate.DeviceOwner,
            0,
            abi.encodeCall(registry.transfer, (aliceDevice, bob))
        );
        _gated(
            "DeviceRegistry",
            address(registry),
            "cancelTransfer(uint256)",
            Gate.DeviceOwner,
            0,
            abi.encodeCall(registry.cancelTransfer, (aliceDevice))
        );
        _gated(
            "DeviceRegistry",
            address(registry),
            "acceptTransfer(uint256,(uint8,bytes,bytes))",
            Gate.PendingOwner,
            0,
            abi.encodeCall(registry.acceptTransfer, (aliceDevice, secpKey(stranger, 0x5158)))
        );

        // DeviceRegistry and PoolRegistry wiring, done once at deployment; pooling flags.
        _gated(
            "DeviceRegistry",
            address(registry),
            "setPools(address)",
            Gate.Deployer,
            0,
            abi.encodeCall(registry.setPools, (stranger))
        );
        _gated(
            "DeviceRegistry",
            address(registry),
            "setPooled(uint256,bool)",
            Gate.PoolsContract,
            0,
            abi.encodeCall(registry.setPooled, (aliceDevice, true))
        );
        _gated(
            "PoolRegistry",
            address(pools),
            "setMarket(address)",
            Gate.Deployer,
            0,
            abi.encodeCall(pools.setMarket, (market))
        );
        // PoolRegistry: anyone creates a pool; its operator runs it; members leave.
        _public(
            "PoolRegistry", address(pools), "createPool(uint16,string)", abi.encodeCall(pools.createPool, (100, "x"))
        );
        _gated(
            "PoolRegistry",
            address(pools),
            "setCommission(uint256,uint16)",
            Gate.PoolOperator,
            0,
            abi.encodeCall(pools.setCommission, (poolId, 3_000))
        );
        _gated(
            "PoolRegistry",
            address(pools),
            "enroll(uint256,address,uint256[],uint256,uint256,bytes)",
            Gate.PoolOperator,
            0,
            _enrollSpareCall()
        );
        _gated(
            "PoolRegistry",
            address(pools),
            "requestLeave(uint256[])",
            Gate.MemberOrOperator,
            0,
            abi.encodeCall(pools.requestLeave, (ids(memberDevice)))
        );
        _public(
            "PoolRegistry",
            address(pools),
            "completeLeave(uint256[])",
            abi.encodeCall(pools.completeLeave, (ids(memberDevice)))
        );
        _public(
            "PoolRegistry",
            address(pools),
            "claim(uint256,(uint256,uint16,int256,int256,int256,uint8)[],bytes32[][])",
            abi.encodeCall(pools.claim, (reportedRequestId, new IDeliveryDispute.DeviceRecord[](0), new bytes32[][](0)))
        );
        _public("PoolRegistry", address(pools), "withdraw(address)", abi.encodeCall(pools.withdraw, (address(eur))));
        _public(
            "PoolRegistry",
            address(pools),
            "sweepUnclaimed(uint256,uint256)",
            abi.encodeCall(pools.sweepUnclaimed, (reportedRequestId, 0))
        );
        _gated(
            "PoolRegistry",
            address(pools),
            "onPoolBid(uint256,address,bytes32,uint256,uint256)",
            Gate.MarketContract,
            0,
            abi.encodeCall(pools.onPoolBid, (poolId, poolOperator, ZONE, 1_000, block.timestamp + 1 days))
        );
        _gated(
            "PoolRegistry",
            address(pools),
            "onPoolBidSettled(uint256,uint256,uint256,uint256)",
            Gate.MarketContract,
            0,
            abi.encodeCall(pools.onPoolBidSettled, (reportedRequestId, 0, 0, 0))
        );
        _gated(
            "FlexMarket",
            address(market),
            "bidAsPool(uint256,uint256,uint48,uint96)",
            Gate.PoolOperator,
            0,
            abi.encodeCall(market.bidAsPool, (openRequestId, poolId, 1_000, P20))
        );

        // Staking: stakers act on their own account; lock/slash are for protocol contracts.
        _public("Staking", address(staking), "stake(uint256)", abi.encodeCall(staking.stake, (0)));
        _public("Staking", address(staking), "requestUnstake(uint256)", abi.encodeCall(staking.requestUnstake, (0)));
        _public("Staking", address(staking), "withdraw()", abi.encodeCall(staking.withdraw, ()));
        bytes32 locker = staking.LOCKER_ROLE();
        bytes32 slasher = staking.SLASHER_ROLE();
        _role("Staking", address(staking), "lock(address,uint256)", locker, abi.encodeCall(staking.lock, (alice, 1)));
        _role(
            "Staking", address(staking), "unlock(address,uint256)", locker, abi.encodeCall(staking.unlock, (alice, 0))
        );
        _role(
            "Staking",
            address(staking),
            "slash(address,uint256,address,uint16)",
            slasher,
            abi.encodeCall(staking.slash, (alice, FLEX, address(0), 0))
        );
        _role(
            "Staking",
            address(staking),
            "slashUnlocked(address,uint256,address,uint16)",
            slasher,
            abi.encodeCall(staking.slashUnlocked, (alice, FLEX, stranger, 5_000))
        );
        _role(
            "Staking",
            address(staking),
            "setUnbondingPeriod(uint64)",
            ADMIN,
            abi.encodeCall(staking.setUnbondingPeriod, (UNBONDING + 1))
        );
        _role(
            "Staking",
            address(staking),
            "setDisputeWindowSource(address)",
            ADMIN,
            abi.encodeCall(staking.setDisputeWindowSource, (IDisputeWindowSource(address(market))))
        );
        _role(
            "Staking", address(staking), "setTreasury(address)", ADMIN, abi.encodeCall(staking.setTreasury, (stranger))
        );
        _accessControl("Staking", address(staking), locker);

        // OracleCommittee: governance seats oracles; only the dispute resolver slashes.
        _public(
            "OracleCommittee",
            address(committee),
            "releaseOracleBond(address)",
            abi.encodeCall(committee.releaseOracleBond, (oracles[0]))
        );
        _role(
            "OracleCommittee",
            address(committee),
            "addOracle(address,uint8)",
            ADMIN,
            abi.encodeCall(committee.addOracle, (alice, 3))
        );
        _role(
            "OracleCommittee",
            address(committee),
            "removeOracle(address,uint8)",
            ADMIN,
            abi.encodeCall(committee.removeOracle, (oracles[2], 2))
        );
        _role(
            "OracleCommittee",
            address(committee),
            "setThreshold(uint8)",
            ADMIN,
            abi.encodeCall(committee.setThreshold, (3))
        );
        _role(
            "OracleCommittee",
            address(committee),
            "setOracleBond(uint128)",
            ADMIN,
            abi.encodeCall(committee.setOracleBond, (1))
        );
        _role(
            "OracleCommittee",
            address(committee),
            "slashSigners(uint64,address,uint16)",
            committee.DISPUTE_ROLE(),
            abi.encodeCall(committee.slashSigners, (1, stranger, 5_000))
        );
        _accessControl("OracleCommittee", address(committee), committee.DISPUTE_ROLE());

        // FlexMarket: permissionless market steps; operators post; the resolver voids.
        _public(
            "FlexMarket",
            address(market),
            "bid(uint256,uint48,uint96,uint256[])",
            abi.encodeCall(market.bid, (openRequestId, 1_000, 1, ids(aliceDevice)))
        );
        _public(
            "FlexMarket",
            address(market),
            "clear(uint256,uint16[])",
            abi.encodeCall(market.clear, (openRequestId, new uint16[](0)))
        );
        _public(
            "FlexMarket",
            address(market),
            "submitReport(uint256,uint256[],bytes32,bytes32,bytes[])",
            abi.encodeCall(market.submitReport, (reportedRequestId, wh(1), "devices", "readings", new bytes[](0)))
        );
        _public(
            "FlexMarket",
            address(market),
            "finalize(uint256,uint256[])",
            abi.encodeCall(market.finalize, (reportedRequestId, wh(50_000)))
        );
        _public("FlexMarket", address(market), "expire(uint256)", abi.encodeCall(market.expire, (openRequestId)));
        _public("FlexMarket", address(market), "withdraw(address)", abi.encodeCall(market.withdraw, (address(eur))));
        _role(
            "FlexMarket",
            address(market),
            "createRequest((bytes32,uint8,uint48,uint40,uint40,uint32,uint128,uint128,uint40,uint8,uint8,address))",
            market.GRID_OPERATOR_ROLE(),
            abi.encodeCall(market.createRequest, (defaultParams()))
        );
        _gated(
            "FlexMarket",
            address(market),
            "cancelRequest(uint256)",
            Gate.RequestOperator,
            0,
            abi.encodeCall(market.cancelRequest, (openRequestId))
        );
        bytes32 disputeRole = market.DISPUTE_ROLE();
        _role(
            "FlexMarket",
            address(market),
            "voidReport(uint256)",
            disputeRole,
            abi.encodeCall(market.voidReport, (reportedRequestId))
        );
        _role(
            "FlexMarket",
            address(market),
            "extendDispute(uint256,uint256)",
            disputeRole,
            abi.encodeCall(market.extendDispute, (reportedRequestId, type(uint40).max))
        );
        _role("FlexMarket", address(market), "setBondPerKW(uint128)", ADMIN, abi.encodeCall(market.setBondPerKW, (1)));
        _role("FlexMarket", address(market), "setMinBidW(uint48)", ADMIN, abi.encodeCall(market.setMinBidW, (1)));
        _role(
            "FlexMarket", address(market), "setMinRequestW(uint48)", ADMIN, abi.encodeCall(market.setMinRequestW, (1))
        );
        _role(
            "FlexMarket",
            address(market),
            "setProtocolFeeBps(uint16)",
            ADMIN,
            abi.encodeCall(market.setProtocolFeeBps, (0))
        );
        _role(
            "FlexMarket",
            address(market),
            "setDeliveryThresholdBps(uint16)",
            ADMIN,
            abi.encodeCall(market.setDeliveryThresholdBps, (0))
        );
        _role(
            "FlexMarket",
            address(market),
            "setMaxBidsPerRequest(uint16)",
            ADMIN,
            abi.encodeCall(market.setMaxBidsPerRequest, (1))
        );
        _role(
            "FlexMarket",
            address(market),
            "setDisputeWindow(uint64)",
            ADMIN,
            abi.encodeCall(market.setDisputeWindow, (60))
        );
        _role(
            "FlexMarket",
            address(market),
            "setReportTimeout(uint64)",
            ADMIN,
            abi.encodeCall(market.setReportTimeout, (60))
        );
        _role(
            "FlexMarket", address(market), "setTreasury(address)", ADMIN, abi.encodeCall(market.setTreasury, (stranger))
        );
        _role(
            "FlexMarket",
            address(market),
            "setMinEscrow(address,uint256)",
            ADMIN,
            abi.encodeCall(market.setMinEscrow, (address(eur), 1))
        );
        _accessControl("FlexMarket", address(market), market.GRID_OPERATOR_ROLE());

        // DisputeResolver: fraud proofs are permissionless; governance sets the parameters.
        IDisputeResolver.MeterUnit memory someUnit = unit(aliceDevice, T0, new int64[](1));
        _public(
            "DisputeResolver",
            address(dispute),
            "challenge(uint256,uint256,bytes,bytes32[],uint256,(uint256,uint64,uint32,uint64,bytes,bytes),uint256)",
            abi.encodeCall(dispute.challenge, (reportedRequestId, aliceDevice, "", emptyProof, 0, someUnit, 0))
        );
        _public(
            "DisputeResolver",
            address(dispute),
            "rebut(uint256,(uint256,uint64,uint32,uint64,bytes,bytes),uint256)",
            abi.encodeCall(dispute.rebut, (1, someUnit, 0))
        );
        _public("DisputeResolver", address(dispute), "resolve(uint256)", abi.encodeCall(dispute.resolve, (1)));
        _public(
            "DisputeResolver",
            address(dispute),
            "proveEquivocation((uint256,uint64,uint32,uint64,bytes,bytes),uint256,(uint256,uint64,uint32,uint64,bytes,bytes),uint256)",
            abi.encodeCall(dispute.proveEquivocation, (someUnit, 0, someUnit, 0))
        );
        _role(
            "DisputeResolver",
            address(dispute),
            "setChallengeBond(uint256)",
            ADMIN,
            abi.encodeCall(dispute.setChallengeBond, (FLEX))
        );
        _role(
            "DisputeResolver",
            address(dispute),
            "setChallengerShareBps(uint16)",
            ADMIN,
            abi.encodeCall(dispute.setChallengerShareBps, (1_000))
        );
        _role(
            "DisputeResolver",
            address(dispute),
            "setResponseWindow(uint64)",
            ADMIN,
            abi.encodeCall(dispute.setResponseWindow, (10 minutes))
        );
        _role(
            "DisputeResolver",
            address(dispute),
            "setEquivocationPenalty(uint256)",
            ADMIN,
            abi.encodeCall(dispute.setEquivocationPenalty, (FLEX))
        );
        _accessControl("DisputeResolver", address(dispute), ADMIN);

        // DeliveryDispute: one-phase arithmetic fraud proofs, permissionless; no governance.
        IDeliveryDispute.DeviceRecord memory someRecord = IDeliveryDispute.DeviceRecord(aliceDevice, 0, 0, 0, 0, 0);
        _public(
            "DeliveryDispute",
            address(delivery),
            "challengeArithmetic(uint256,(uint256,uint16,int256,int256,int256,uint8),bytes32[],bytes,bytes32[],uint256[])",
            abi.encodeCall(
                delivery.challengeArithmetic,
                (reportedRequestId, someRecord, emptyProof, "", emptyProof, ids(aliceDevice))
            )
        );
        _public(
            "DeliveryDispute",
            address(delivery),
            "challengeBidTotal(uint256,uint256[],uint16,((uint256,uint16,int256,int256,int256,uint8),bytes32[])[],uint256[])",
            abi.encodeCall(
                delivery.challengeBidTotal,
                (reportedRequestId, new uint256[](1), 0, new IDeliveryDispute.ProvenRecord[](0), ids(aliceDevice))
            )
        );
    }

    // ─── Tests ────────────────────────────────────────────────────────────────────────────

    /// @notice Every gated function x every actor: the intended callers succeed, every other
    ///         caller gets the gate's custom error, and nothing changes on a refusal.
    function test_matrix_onlyIntendedCallersPass() public {
        uint256 checked = 0;
        for (uint256 e; e < entries.length; ++e) {
            Entry storage entry = entries[e];
            if (entry.gate == Gate.Public) continue;
            for (uint256 a; a < actors.length; ++a) {
                address actor = actors[a];
                uint256 snapshot = vmx.snapshotState();
                vm.prank(actor);
                (bool ok, bytes memory result) = entry.target.call(entry.data);
                bool allowed = _allowed(entry, actor);
                string memory what = string.concat(entry.contractName, ".", entry.signature, " by ", actorNames[a]);
                if (allowed) {
                    if (!ok) revert(string.concat(what, ": intended caller refused"));
                } else {
                    if (ok) revert(string.concat(what, ": unintended caller got through"));
                    assertEq(keccak256(result), keccak256(_refusal(entry, actor)), string.concat(what, ": error"));
                }
                vmx.revertToState(snapshot);
                ++checked;
            }
        }
        assertGe(checked, 30 * actors.length, "matrix size");
    }

    /// @notice Public-by-design functions have no caller gate: called by a stranger and by
    ///         every other actor, each either succeeds or fails for a reason of state or
    ///         input (unknown id, closed gate, nothing to withdraw...), never with a gate's error.
    function test_publicFunctions_haveNoCallerGate() public {
        uint256 checked = 0;
        for (uint256 e; e < entries.length; ++e) {
            Entry storage entry = entries[e];
            if (entry.gate != Gate.Public) continue;
            for (uint256 a; a < actors.length; ++a) {
                uint256 snapshot = vmx.snapshotState();
                vm.prank(actors[a]);
                (bool ok, bytes memory result) = entry.target.call(entry.data);
                if (!ok && _isGateError(result)) {
                    revert(string.concat(entry.contractName, ".", entry.signature, " gated for ", actorNames[a]));
                }
                vmx.revertToState(snapshot);
                ++checked;
            }
        }
        assertEq(checked, 27 * actors.length, "every public function by every actor");
    }

    /// @notice Role holdings after deployment are exactly the intended ones (no extra
    ///         holder among the actors) and every role is administered by DEFAULT_ADMIN_ROLE.
    function test_roleHoldings_matchTheSpecification() public view {
        address[4] memory gated = [address(staking), address(committee), address(market), address(dispute)];
        bytes32[5] memory roles = [
            ADMIN, staking.LOCKER_ROLE(), staking.SLASHER_ROLE(), committee.DISPUTE_ROLE(), market.GRID_OPERATOR_ROLE()
        ];
        for (uint256 c; c < gated.length; ++c) {
            for (uint256 r; r < roles.length; ++r) {
                assertEq(IAccessControl(gated[c]).getRoleAdmin(roles[r]), ADMIN, "role admin");
                for (uint256 a; a < actors.length; ++a) {
                    assertEq(
                        IAccessControl(gated[c]).hasRole(roles[r], actors[a]),
                        intended[gated[c]][roles[r]][actors[a]],
                        string.concat("role holder ", actorNames[a], " of ", vm.toString(roles[r]))
                    );
                }
            }
        }
    }

    /// @notice The function list is the ABI's: every state-changing function of every
    ///         contract is classified above, and nothing classified is missing from the ABI.
    function test_everyStateChangingFunctionIsClassified() public view {
        string[8] memory names = [
            "PoolRegistry",
            "FlexToken",
            "DeviceRegistry",
            "Staking",
            "OracleCommittee",
            "FlexMarket",
            "DisputeResolver",
            "DeliveryDispute"
        ];
        uint256 total = 0;
        for (uint256 c; c < names.length; ++c) {
            string memory json = vmx.readFile(_artifactPath(names[c]));
            // Several matches come back as one ABI-encoded string array.
            string[] memory mutating = abi.decode(
                vmx.parseJson(
                    json,
                    "$.abi[?(@.type == 'function' && @.stateMutability != 'view' && @.stateMutability != 'pure')].name"
                ),
                (string[])
            );
            string[] memory signatures = vmx.parseJsonKeys(json, "$.methodIdentifiers");
            uint256 found = 0;
            for (uint256 s; s < signatures.length; ++s) {
                if (!_contains(mutating, _nameOf(signatures[s]))) continue;
                ++found;
                if (!_isClassified(names[c], signatures[s])) {
                    revert(string.concat("unclassified state-changing function ", names[c], ".", signatures[s]));
                }
            }
            assertEq(found, mutating.length, string.concat(names[c], ": every mutating function has a signature"));
            assertEq(found, _classifiedCount(names[c]), string.concat(names[c], ": no stale classification"));
            total += found;
        }
        assertEq(total, entries.length, "every classification matched");
    }

    /// @notice renounceRole only ever drops the caller's own role.
    function test_renounceRole_onlyForOneself() public {
        bytes32 role = market.GRID_OPERATOR_ROLE();
        vm.prank(stranger);
        vm.expectRevert(IAccessControl.AccessControlBadConfirmation.selector);
        market.renounceRole(role, gridOperator);
        vm.prank(gridOperator);
        market.renounceRole(role, gridOperator);
        assertEq(market.hasRole(role, gridOperator), false, "renounced");
    }

    /// @notice Revoking a role takes effect at once: a revoked grid operator cannot post.
    function test_revokedGridOperator_cannotPost_butCanStillCancelItsRequest() public {
        bytes32 role = market.GRID_OPERATOR_ROLE();
        vm.prank(governance);
        market.revokeRole(role, gridOperator);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, gridOperator, role)
        );
        createRequest(defaultParams());
        // Its escrowed request stays its own: cancelling is gated by the request, not the role.
        vm.prank(gridOperator);
        market.cancelRequest(openRequestId);
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────

    function _strangerKeys() internal view returns (IDeviceRegistry.DeviceKey[] memory out) {
        out = new IDeviceRegistry.DeviceKey[](1);
        out[0] = secpKey(stranger, 0x5159);
    }

    function _enrollSpareCall() internal view returns (bytes memory) {
        uint256 deadline = block.timestamp + 1 days;
        bytes memory signature = signConsent(MEMBER_KEY, poolId, ids(spareDevice), 1, deadline);
        return abi.encodeCall(pools.enroll, (poolId, member, ids(spareDevice), 1, deadline, signature));
    }

    function _addActor(address who, string memory name) internal {
        actors.push(who);
        actorNames.push(name);
    }

    function _public(string memory name, address target, string memory signature, bytes memory data) internal {
        if (bytes4(data) != bytes4(keccak256(bytes(signature)))) revert(string.concat("calldata of ", signature));
        entries.push(Entry(name, target, signature, Gate.Public, 0, data));
    }

    /// @dev True for the errors by which a gate refuses a caller.
    function _isGateError(bytes memory result) internal pure returns (bool) {
        if (result.length < 4) return false;
        bytes4 selector = bytes4(result);
        return selector == IAccessControl.AccessControlUnauthorizedAccount.selector
            || selector == IAccessControl.AccessControlBadConfirmation.selector
            || selector == IDeviceRegistry.NotDeviceOwner.selector
            || selector == IDeviceRegistry.NotPendingOwner.selector
            || selector == IFlexMarket.NotRequestOperator.selector || selector == IPoolRegistry.NotPoolOperator.selector
            || selector == IPoolRegistry.NotOwnerOrOperator.selector || selector == IPoolRegistry.NotMarket.selector
            || selector == IPoolRegistry.MarketWiring.selector || selector == IDeviceRegistry.NotPools.selector
            || selector == IDeviceRegistry.NotDeployer.selector;
    }

    function _role(string memory name, address target, string memory signature, bytes32 role, bytes memory data)
        internal
    {
        _gated(name, target, signature, Gate.Role, role, data);
    }

    function _gated(
        string memory name,
        address target,
        string memory signature,
        Gate gate,
        bytes32 role,
        bytes memory data
    ) internal {
        if (bytes4(data) != bytes4(keccak256(bytes(signature)))) {
            revert(string.concat("calldata of ", signature));
        }
        entries.push(Entry(name, target, signature, gate, role, data));
    }

    /// @dev OpenZeppelin AccessControl's three writers: grant and revoke need the role's admin
    ///      (DEFAULT_ADMIN_ROLE for every GridFlex role), renounce needs the account itself.
    function _accessControl(string memory name, address target, bytes32 sampleRole) internal {
        _role(
            name,
            target,
            "grantRole(bytes32,address)",
            ADMIN,
            abi.encodeCall(IAccessControl.grantRole, (sampleRole, stranger))
        );
        _role(
            name,
            target,
            "revokeRole(bytes32,address)",
            ADMIN,
            abi.encodeCall(IAccessControl.revokeRole, (sampleRole, governance))
        );
        // Every actor renounces governance's admin role: only governance itself may.
        _gated(
            name,
            target,
            "renounceRole(bytes32,address)",
            Gate.Self,
            ADMIN,
            abi.encodeCall(IAccessControl.renounceRole, (ADMIN, governance))
        );
    }

    function _allowed(Entry storage entry, address actor) internal view returns (bool) {
        if (entry.gate == Gate.Role) return intended[entry.target][entry.role][actor];
        if (entry.gate == Gate.DeviceOwner) return actor == alice;
        if (entry.gate == Gate.PendingOwner) return actor == stranger;
        if (entry.gate == Gate.RequestOperator) return actor == gridOperator;
        if (entry.gate == Gate.Self) return actor == governance;
        if (entry.gate == Gate.Deployer) return false;
        if (entry.gate == Gate.PoolsContract) return actor == address(pools);
        if (entry.gate == Gate.MarketContract) return actor == address(market);
        if (entry.gate == Gate.PoolOperator) return actor == poolOperator;
        if (entry.gate == Gate.MemberOrOperator) return actor == member || actor == poolOperator;
        return true;
    }

    function _refusal(Entry storage entry, address actor) internal view returns (bytes memory) {
        if (entry.gate == Gate.Role) {
            return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, actor, entry.role);
        }
        if (entry.gate == Gate.DeviceOwner) {
            return abi.encodeWithSelector(IDeviceRegistry.NotDeviceOwner.selector, aliceDevice, actor, alice);
        }
        if (entry.gate == Gate.PendingOwner) {
            return abi.encodeWithSelector(IDeviceRegistry.NotPendingOwner.selector, aliceDevice, actor, stranger);
        }
        if (entry.gate == Gate.RequestOperator) {
            return abi.encodeWithSelector(IFlexMarket.NotRequestOperator.selector, openRequestId, actor);
        }
        if (entry.gate == Gate.Deployer) {
            if (entry.target == address(registry)) {
                return abi.encodeWithSelector(IDeviceRegistry.NotDeployer.selector, actor);
            }
            return abi.encodeWithSelector(IPoolRegistry.MarketWiring.selector, actor);
        }
        if (entry.gate == Gate.PoolsContract) return abi.encodeWithSelector(IDeviceRegistry.NotPools.selector, actor);
        if (entry.gate == Gate.MarketContract) return abi.encodeWithSelector(IPoolRegistry.NotMarket.selector, actor);
        if (entry.gate == Gate.PoolOperator) {
            return abi.encodeWithSelector(IPoolRegistry.NotPoolOperator.selector, poolId, actor);
        }
        if (entry.gate == Gate.MemberOrOperator) {
            return abi.encodeWithSelector(IPoolRegistry.NotOwnerOrOperator.selector, memberDevice, actor);
        }
        return abi.encodeWithSelector(IAccessControl.AccessControlBadConfirmation.selector);
    }

    function _artifactPath(string memory name) internal view returns (string memory) {
        return string.concat(
            vmx.projectRoot(), "/", vmx.envOr("FOUNDRY_OUT", string("out")), "/", name, ".sol/", name, ".json"
        );
    }

    function _nameOf(string memory signature) internal pure returns (string memory) {
        bytes memory raw = bytes(signature);
        uint256 end = 0;
        while (end < raw.length && raw[end] != "(") ++end;
        bytes memory name = new bytes(end);
        for (uint256 i; i < end; ++i) {
            name[i] = raw[i];
        }
        return string(name);
    }

    function _contains(string[] memory list, string memory item) internal pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (keccak256(bytes(list[i])) == keccak256(bytes(item))) return true;
        }
        return false;
    }

    function _isClassified(string memory name, string memory signature) internal view returns (bool) {
        for (uint256 e; e < entries.length; ++e) {
            if (
                keccak256(bytes(entries[e].contractName)) == keccak256(bytes(name))
                    && keccak256(bytes(entries[e].signature)) == keccak256(bytes(signature))
            ) return true;
        }
        return false;
    }

    function _classifiedCount(string memory name) internal view returns (uint256 count) {
        for (uint256 e; e < entries.length; ++e) {
            if (keccak256(bytes(entries[e].contractName)) == keccak256(bytes(name))) ++count;
        }
    }
}
