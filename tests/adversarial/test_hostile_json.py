"""Hostile JSON from outside never crashes a GridFlex process (issue 12, findings 8 and 10).

The attack: a 195 KiB document nested 100,000 levels deep. py_ecc (imported with
eth-keys) raises Python's recursion limit to 100,000, so the stdlib decoder overflowed the
C stack and the process died with SIGSEGV. Here the same payload is served by a hostile
oracle or peer (a tiny real HTTP server in the test: outside our system) to the node's
sender, the committee's peer fetch, `gridflex verify`'s fetch and the explorer's verify
page fetch. Each client runs in a child Python process, so a regression shows up as that
child dying by a signal, not as this test session dying; each must end normally with a
readable reason. The real oracle server under the same attack is in
`tests/oracle_service/test_oracle_api.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridflex import SAFE_RECURSION_LIMIT, safe_json

DEEP = 100_000
DEEP_DOCUMENT = b"[" * DEEP + b"]" * DEEP
"""195 KiB, nested 100,000 levels: the finding's payload."""


@contextmanager
def hostile_server(body: bytes, status: int = 200) -> Iterator[str]:
    """An HTTP server answering every GET and POST with `body` (as JSON)."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_client(script: str, url: str) -> subprocess.CompletedProcess[str]:
    """Run `script` (with `URL` bound) in a child Python; a crash is a negative returncode."""
    code = f"URL = {url!r}\n" + textwrap.dedent(script)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def assert_survived(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"client died (returncode {result.returncode}, negative = killed by that signal)\n"
        f"{result.stdout}\n{result.stderr[-2000:]}"
    )
    return result.stdout


# ─── The clients, each against a hostile server ────────────────────────────────────────


def test_node_sender_keeps_its_units_when_an_oracle_answers_deeply_nested_json() -> None:
    script = """
        import random, tempfile
        from pathlib import Path
        from eth_account import Account
        from gridflex.rules.attestation import meter_domain_separator, sign_unit
        from node.outbox import Outbox
        from node.sender import Backoff, Sender

        domain = meter_domain_separator(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
        key = bytes(Account.create().key)
        with Outbox(Path(tempfile.mkdtemp()) / "outbox.db", [URL]) as outbox:
            outbox.append(1, 1_728_259_200, 900, [5], lambda u: sign_unit(u, domain, key))
            sender = Sender(outbox, backoff=Backoff(), rng=random.Random(1))
            finished = sender.send_batch(URL)
            print("finished", finished, "pending", outbox.pending_count(URL),
                  "retries", sender.stats.retries, "dead", len(outbox.dead_letters()))
    """
    with hostile_server(DEEP_DOCUMENT) as url:
        out = assert_survived(run_client(script, url))
    assert "finished 0 pending 1 retries 1 dead 0" in out


def test_verify_fetch_refuses_a_deeply_nested_report_with_a_readable_error() -> None:
    script = """
        import httpx
        from gridflex.verify import VerifyInputError, fetch_report_summary
        try:
            fetch_report_summary(httpx.Client(), URL, 1, 0)
        except VerifyInputError as error:
            print("refused:", error)
    """
    with hostile_server(DEEP_DOCUMENT) as url:
        out = assert_survived(run_client(script, url))
    assert "refused:" in out and f"nested {DEEP} levels deep" in out


def test_verify_fetch_turns_a_malformed_report_shape_into_a_readable_error() -> None:
    script = """
        import httpx
        from gridflex.verify import VerifyInputError, fetch_report_summary
        try:
            fetch_report_summary(httpx.Client(), URL, 1, 0)
        except VerifyInputError as error:
            print("refused:", error)
    """
    with hostile_server(json.dumps({"round": "x", "records": 7}).encode()) as url:
        out = assert_survived(run_client(script, url))
    assert "refused:" in out and "malformed" in out


def test_explorer_verify_page_fetch_refuses_a_deeply_nested_device_answer() -> None:
    script = """
        import httpx
        from explorer.verification import fetch_report
        from gridflex.verify import PostedReport, VerifyInputError
        try:
            fetch_report(httpx.Client(), [URL], PostedReport(1, 0, (), b"", b"", 0, 0))
        except VerifyInputError as error:
            print("refused:", error)
    """
    with hostile_server(DEEP_DOCUMENT) as url:
        out = assert_survived(run_client(script, url))
    assert "refused:" in out and "nested" in out


def test_committee_skips_a_hostile_peer_and_still_collects_the_honest_peers_signature() -> None:
    """Peer 1 answers the deep payload, peer 2 a valid signature: the loop must survive
    peer 1 and keep peer 2's signature (before, one bad peer also cut off the rest)."""
    script = """
        import json, sys, threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from types import SimpleNamespace
        from eth_account import Account
        from gridflex.rules.eip712 import sign_digest_secp256k1
        from oracle.committee import CommitteeLoop
        from oracle.config import OracleSettings

        digest = bytes(range(32))
        honest = Account.create()
        body = json.dumps({"digest": "0x" + digest.hex(), "signature":
            "0x" + sign_digest_secp256k1(honest.key, digest).hex()}).encode()

        class Honest(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Honest)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        honest_url = f"http://127.0.0.1:{server.server_address[1]}"

        class Book:
            added = []
            def signatures(self, report):
                return {signer: sig for signer, sig, _ in self.added}
            def add_signature(self, report, signer, signature, source):
                self.added.append((signer, signature, source))

        class Loop(CommitteeLoop):
            def _is_active_oracle(self, address):
                return True

        book = Book()
        loop = Loop(OracleSettings(peers=f"{URL},{honest_url}", chain_id=31337), book,
                    SimpleNamespace(deployment=SimpleNamespace(deployed_at_block=0)), None)
        loop.collect_signatures(SimpleNamespace(request_id=1, round=0, digest=digest))
        print("kept", [(s == honest.address, src == honest_url) for s, _, src in book.added])
    """
    with hostile_server(DEEP_DOCUMENT) as url:
        out = assert_survived(run_client(script, url))
    assert "kept [(True, True)]" in out


def test_py_ecc_recursion_limit_is_undone_so_the_decoder_raises_instead_of_crashing() -> None:
    """Even a plain `json.loads` (not ours) of the payload raises RecursionError once
    `gridflex` is imported, whatever imported py_ecc first."""
    script = """
        import json, sys
        import eth_account  # imports py_ecc, which raises the limit to 100,000
        import gridflex
        print("limit", sys.getrecursionlimit())
        try:
            json.loads(b"[" * 100_000 + b"]" * 100_000)
        except RecursionError:
            print("RecursionError")
    """
    out = assert_survived(run_client(script, ""))
    assert f"limit {SAFE_RECURSION_LIMIT}" in out and "RecursionError" in out


# ─── safe_json itself ──────────────────────────────────────────────────────────────────


def test_loads_refuses_depth_size_duplicates_and_constants_with_a_reason() -> None:
    cases = {
        DEEP_DOCUMENT: f"nested {DEEP} levels deep",
        b'{"units": [], "units": [1]}': "duplicate key 'units'",
        b'{"a": {"b": 1, "b": 2}}': "duplicate key 'b'",
        b"[NaN]": "NaN is not a JSON number",
        b"[Infinity]": "Infinity is not a JSON number",
        b'{"units": [': "malformed JSON",
        b"\xff\xfe": "malformed JSON",
    }
    for document, reason in cases.items():
        with pytest.raises(safe_json.UnsafeJsonError, match=reason):
            safe_json.loads(document)
    with pytest.raises(safe_json.UnsafeJsonError, match="at most 10"):
        safe_json.loads(b"[1, 2, 3, 4, 5]", max_bytes=10)
    assert isinstance(safe_json.UnsafeJsonError("x"), ValueError)


def test_brackets_inside_strings_and_escaped_quotes_do_not_count() -> None:
    document = json.dumps({"a": ["[[[{{{", '"]]]', "\\"], "b": {"c": '\\"[[['}}).encode()
    assert safe_json.nesting_depth(document) == 2
    assert safe_json.loads(document, max_depth=2) == json.loads(document)
    # An unterminated string with many escaped quotes is scanned in linear time.
    assert safe_json.nesting_depth(b'"' + b'\\"' * 1_000_000) == 0


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ax,:'),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=4), children, max_size=4)
    ),
    max_leaves=30,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(_json_values)
def test_nesting_depth_equals_the_decoded_depth_and_valid_json_round_trips(value: object) -> None:
    document = json.dumps(value).encode()
    assert safe_json.nesting_depth(document) == _depth(value)
    assert safe_json.loads(document, max_depth=64) == value
