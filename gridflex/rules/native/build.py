"""Builds the native batch Keccak library (`python -m gridflex.rules.native.build`, run by
`make install`): `keccak_batch.c` -> `_keccak_batch.so` next to it, with `-march=native` when
the compiler accepts it. Rebuilds only when the source is newer than the library. Without a C
compiler it says so and exits 0: `gridflex.rules.native` then falls back to pycryptodome."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "keccak_batch.c"
LIBRARY = HERE / "_keccak_batch.so"
BASE_FLAGS = ["-O3", "-std=c99", "-shared", "-fPIC", "-pthread"]


def compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def build(force: bool = False, quiet: bool = False) -> Path | None:
    """The library's path after building it if needed; None without a working compiler."""
    if not force and LIBRARY.exists() and LIBRARY.stat().st_mtime >= SOURCE.stat().st_mtime:
        return LIBRARY
    cc = compiler()
    if cc is None:
        if not quiet:
            print(
                "gridflex.rules.native: no C compiler; keccak stays on pycryptodome",
                file=sys.stderr,
            )
        return None
    # Build into a temporary file and rename it, so a process loading the library never
    # sees a half-written file.
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        target = Path(tmp) / LIBRARY.name
        for extra in (["-march=native"], []):
            command = [cc, *BASE_FLAGS, *extra, "-o", str(target), str(SOURCE)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode == 0:
                os.replace(target, LIBRARY)
                if not quiet:
                    flags = " ".join([cc, *extra])
                    print(f"gridflex.rules.native: built {LIBRARY.name} ({flags})")
                return LIBRARY
        if not quiet:
            print(f"gridflex.rules.native: build failed:\n{result.stderr}", file=sys.stderr)
    return None


if __name__ == "__main__":
    build(force="--force" in sys.argv)
