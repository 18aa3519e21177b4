"""GridFlex shared protocol core: config, chain access, artifacts and the `gridflex` CLI."""

import contextlib as _contextlib
import sys as _sys

SAFE_RECURSION_LIMIT = 1_000
"""CPython's default. py_ecc (imported by eth-keys, so by every GridFlex process) raises the
limit to 100,000 at import, which lets the C JSON decoder overflow the C stack (SIGSEGV)
on deeply nested input instead of raising RecursionError: import it once here and undo
that (it uses no deep recursion for what GridFlex calls). See gridflex.safe_json."""


def _restore_recursion_limit() -> None:
    with _contextlib.suppress(ImportError):  # eth-keys always brings it
        import py_ecc  # noqa: F401 -- imported for its side effect, undone right below
    if _sys.getrecursionlimit() > SAFE_RECURSION_LIMIT:
        _sys.setrecursionlimit(SAFE_RECURSION_LIMIT)


_restore_recursion_limit()
