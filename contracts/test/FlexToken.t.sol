// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "./utils/Deployers.sol";
import {FlexToken} from "../FlexToken.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

contract FlexTokenTest is Deployers {
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    uint256 internal constant SUPPLY = 1_000_000_000 * 1e18;

    uint256 internal ownerKey = 0x0123;
    address internal owner;
    address internal spender = address(0x5BE);

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function setUp() public {
        deployProtocol();
        owner = vm.addr(ownerKey);
    }

    // ─── Helpers ──────────────────────────────────────────────────────────────────────────

    function _permitDigest(FlexToken token, address owner_, address spender_, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner_, spender_, value, nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    function _signPermit(uint256 key, address spender_, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        address signer = vm.addr(key);
        return vm.sign(key, _permitDigest(flex, signer, spender_, value, flex.nonces(signer), deadline));
    }

    function _domainSeparator(address token, uint256 chainId) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("GridFlex Token"),
                keccak256("1"),
                chainId,
                token
            )
        );
    }

    // ─── Metadata and supply ──────────────────────────────────────────────────────────────

    function test_constructor_mintsWholeSupplyToInitialHolder() public view {
        assertEq(flex.totalSupply(), SUPPLY, "total supply");
        assertEq(flex.balanceOf(governance), SUPPLY - 3 * ORACLE_BOND, "holder balance after fixture staking");
        assertEq(flex.balanceOf(address(staking)), 3 * ORACLE_BOND, "staked by oracles");
    }

    function test_constructor_freshToken_holderGetsAllAndEmitsMint() public {
        address holder = address(0xB0D);
        vm.expectEmit(true, true, false, true);
        emit Transfer(address(0), holder, 42e18);
        FlexToken token = new FlexToken(holder, 42e18);
        assertEq(token.totalSupply(), 42e18, "supply");
        assertEq(token.balanceOf(holder), 42e18, "holder");
    }

    function test_metadata_nameSymbolDecimals() public view {
        assertEq(keccak256(bytes(flex.name())), keccak256("GridFlex Token"), "name");
        assertEq(keccak256(bytes(flex.symbol())), keccak256("FLEX"), "symbol");
        assertEq(flex.decimals(), 18, "decimals");
    }

    function test_domainSeparator_matchesEip712Domain() public view {
        assertEq(flex.DOMAIN_SEPARATOR(), _domainSeparator(address(flex), block.chainid), "domain separator");
    }

    // ─── Permit ───────────────────────────────────────────────────────────────────────────

    function test_permit_validSignature_setsAllowanceAndBumpsNonce() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(ownerKey, spender, 500e18, deadline);
        vm.expectEmit(true, true, false, true, address(flex));
        emit Approval(owner, spender, 500e18);
        flex.permit(owner, spender, 500e18, deadline, v, r, s);
        assertEq(flex.allowance(owner, spender), 500e18, "allowance");
        assertEq(flex.nonces(owner), 1, "nonce");
    }

    function test_permit_thenTransferFrom_movesTokens() public {
        vm.prank(governance);
        flex.transfer(owner, 1_000e18);
        uint256 deadline = block.timestamp;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(ownerKey, spender, 300e18, deadline);
        // submitted by a relayer, not the owner
        vm.prank(address(0x4E1A));
        flex.permit(owner, spender, 300e18, deadline, v, r, s);
        vm.prank(spender);
        flex.transferFrom(owner, spender, 300e18);
        assertEq(flex.balanceOf(spender), 300e18, "spender balance");
        assertEq(flex.balanceOf(owner), 700e18, "owner balance");
        assertEq(flex.allowance(owner, spender), 0, "allowance used");
    }

    function test_permit_expiredDeadline_reverts() public {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(ownerKey, spender, 1e18, deadline);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        flex.permit(owner, spender, 1e18, deadline, v, r, s);
    }

    function test_permit_wrongSigner_reverts() public {
        uint256 otherKey = 0x0456;
        uint256 deadline = block.timestamp + 1;
        // signed by another key over the owner's permit
        bytes32 digest = _permitDigest(flex, owner, spender, 1e18, 0, deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(otherKey, digest);
        vm.expectRevert(
            abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, vm.addr(otherKey), owner)
        );
        flex.permit(owner, spender, 1e18, deadline, v, r, s);
    }

    function test_permit_changedValue_reverts() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(ownerKey, spender, 1e18, deadline);
        address recovered = ecrecover(_permitDigest(flex, owner, spender, 2e18, 0, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, owner));
        flex.permit(owner, spender, 2e18, deadline, v, r, s);
    }

    function test_permit_replayed_reverts() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(ownerKey, spender, 1e18, deadline);
        flex.permit(owner, spender, 1e18, deadline, v, r, s);
        // the nonce moved on: the same signature now recovers some other address
        address recovered = ecrecover(_permitDigest(flex, owner, spender, 1e18, 1, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, owner));
        flex.permit(owner, spender, 1e18, deadline, v, r, s);
    }

    function test_permit_otherChainId_reverts() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(ownerKey, spender, 1e18, deadline);
        vm.chainId(block.chainid + 1);
        assertEq(flex.DOMAIN_SEPARATOR(), _domainSeparator(address(flex), block.chainid), "domain follows chain id");
        address recovered = ecrecover(_permitDigest(flex, owner, spender, 1e18, 0, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, owner));
        flex.permit(owner, spender, 1e18, deadline, v, r, s);
    }

    function testFuzz_permit_setsAllowance(uint256 value, uint256 deadline, uint256 key) public {
        key = bound(key, 1, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140);
        deadline = bound(deadline, block.timestamp, type(uint256).max);
        address signer = vm.addr(key);
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(key, spender, value, deadline);
        flex.permit(signer, spender, value, deadline, v, r, s);
        assertEq(flex.allowance(signer, spender), value, "allowance");
        assertEq(flex.nonces(signer), 1, "nonce");
    }

    function testFuzz_transfer_conservesSupply(uint256 amount) public {
        amount = bound(amount, 0, flex.balanceOf(governance));
        vm.prank(governance);
        flex.transfer(owner, amount);
        assertEq(flex.balanceOf(owner) + flex.balanceOf(governance) + flex.balanceOf(address(staking)), SUPPLY, "supply");
    }
}
