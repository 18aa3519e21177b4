"""Every link of every tracked Markdown file resolves in a fresh clone: a relative link
names a file (or folder) git tracks, inside the repository; web links are left alone
(they are not files of ours); a link to a local file outside the clone (`../shared/...`,
`/work/...`, `file:`) is refused. Links are read with markdown-it (the parser rich uses),
so code spans and fenced blocks are not mistaken for links."""

from __future__ import annotations

import posixpath
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[2]
WEB_SCHEMES = ("http", "https", "mailto")
SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def tracked_files(root: Path) -> set[str]:
    """Repository-relative POSIX paths of every file git tracks: what a clone holds."""
    listing = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z"], check=True, capture_output=True, text=True
    ).stdout
    return {path for path in listing.split("\0") if path}


def link_targets(markdown: str) -> list[str]:
    """The target of every link and image in `markdown` (inline, reference, autolink)."""
    targets: list[str] = []

    def walk(tokens: list[Token]) -> None:
        for token in tokens:
            for attribute in ("href", "src"):
                value = token.attrGet(attribute) if token.type in ("link_open", "image") else None
                if isinstance(value, str):
                    targets.append(value)
            if token.children:
                walk(token.children)

    walk(MarkdownIt("commonmark").parse(markdown))
    return targets


def link_problem(document: str, target: str, tracked: set[str]) -> str | None:
    """Why `target`, linked from the tracked file `document`, fails in a clone (or None)."""
    path = unquote(target.split("#", 1)[0].split("?", 1)[0])
    scheme = SCHEME.match(target)
    if scheme is not None:
        return None if scheme.group(1).lower() in WEB_SCHEMES else "not a web link"
    if not path:
        return None  # an anchor in the same document
    if path.startswith("/"):
        return "an absolute path: a clone has no such file"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(document), path))
    if resolved == ".." or resolved.startswith("../"):
        return "outside the repository"
    if resolved in tracked or any(file.startswith(resolved + "/") for file in tracked):
        return None
    return "no such tracked file"


def broken_links(root: Path) -> list[str]:
    """`file: target (why)` for each link of a tracked Markdown file that fails in a clone."""
    tracked = tracked_files(root)
    found = []
    for document in sorted(path for path in tracked if path.lower().endswith(".md")):
        for target in link_targets((root / document).read_text(encoding="utf-8")):
            problem = link_problem(document, target, tracked)
            if problem is not None:
                found.append(f"{document}: {target} ({problem})")
    return found


def test_every_link_of_every_tracked_markdown_file_resolves_in_a_clone() -> None:
    assert broken_links(ROOT) == []


def test_the_markdown_files_are_read_and_their_links_seen() -> None:
    """Guards against a check that passes by seeing nothing: the top README links the
    component READMEs, and those links are found."""
    targets = link_targets((ROOT / "README.md").read_text(encoding="utf-8"))
    assert {"node/README.md", "oracle/README.md", "explorer/README.md"} <= set(targets)


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("../../shared/DESIGN.md", "outside the repository"),
        ("../sub/../../../x.md", "outside the repository"),
        ("/work/shared/DESIGN.md", "an absolute path: a clone has no such file"),
        ("file:///etc/hosts", "not a web link"),
        ("missing.md", "no such tracked file"),
        ("untracked.md#part", "no such tracked file"),
        ("sub/README.md", None),
        ("sub", None),
        ("sub/README.md#inputs-and-outputs", None),
        ("#a-heading", None),
        ("https://example.org/page", None),
        ("../README.md", None),
    ],
)
def test_link_problem_names_each_kind_of_broken_link(target: str, problem: str | None) -> None:
    tracked = {"README.md", "docs/guide.md", "docs/sub/README.md"}
    assert link_problem("docs/guide.md", target, tracked) == problem


def test_a_broken_link_in_a_tracked_file_fails_the_check(tmp_path: Path) -> None:
    """On a real git repository: a link out of the clone and one to an untracked file
    are both reported; a link to a tracked file and a link in a code span are not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n")
    (tmp_path / "untracked.md").write_text("not added\n")
    (tmp_path / "README.md").write_text(
        "See [the design](../shared/DESIGN.md), [notes](untracked.md), "
        "[the guide](docs/guide.md) and `[not a link](gone.md)`.\n\n"
        "```\n[also not a link](gone.md)\n```\n"
    )
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "README.md", "docs"], check=True)
    assert broken_links(tmp_path) == [
        "README.md: ../shared/DESIGN.md (outside the repository)",
        "README.md: untracked.md (no such tracked file)",
    ]
