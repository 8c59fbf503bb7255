"""The repository stands alone: its documents are in `docs/`, and what cites them finds them.

The contracts (event, topics, windows, totals, rules, breaches) once lived in a document outside
the repository; a reader of a clone could not follow those citations. These checks keep it so.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Written in two parts, so that this file does not match itself.
OUTSIDE_REFERENCES = ("design" + ".md", "shared" + "/")
DOC_CITATION = re.compile(r"docs/([A-Za-z0-9_-]+\.md)")
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


NOT_THE_PROJECT = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
NOT_THE_PROJECT |= {".hypothesis", "data", "build", "dist", "cache"}


def repository_files() -> list[Path]:
    """Tracked files and new ones not ignored: what a clone (or the next commit) holds.
    Outside a git checkout (an unpacked archive), every file but caches and local state."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return [
            path
            for path in ROOT.rglob("*")
            if path.is_file()
            and not any(
                part in NOT_THE_PROJECT or part.endswith(".egg-info")
                for part in path.relative_to(ROOT).parts[:-1]
            )
        ]
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def text_files() -> dict[Path, str]:
    texts = {}
    for path in repository_files():
        try:
            texts[path] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # images and other binaries
            continue
    return texts


def test_no_file_refers_to_documents_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path, text in text_files().items()
        for number, line in enumerate(text.splitlines(), 1)
        if any(reference in line for reference in OUTSIDE_REFERENCES)
    ]
    assert not found, "cite docs/ instead:\n" + "\n".join(found)


def test_every_cited_docs_file_exists() -> None:
    cited = {
        (path.relative_to(ROOT), name)
        for path, text in text_files().items()
        for name in DOC_CITATION.findall(text)
    }
    assert cited, "no file cites docs/: the pattern is wrong"
    missing = sorted(
        f"{path} cites docs/{name}" for path, name in cited if not (ROOT / "docs" / name).is_file()
    )
    assert not missing, "\n".join(missing)


def test_links_between_documents_resolve() -> None:
    """Relative links in README.md and docs/*.md point at files that exist."""
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = [
        f"{document.relative_to(ROOT)} -> {target}"
        for document in documents
        for target in MARKDOWN_LINK.findall(document.read_text(encoding="utf-8"))
        if "://" not in target
        and not target.startswith("mailto:")
        and not (document.parent / target).exists()
    ]
    assert not broken, "\n".join(broken)


def test_the_contracts_are_documented() -> None:
    """The sections the code cites by name are where it says."""
    sections = {
        "events.md": ["## The normalized event", "## Topics", "### Status records"],
        "windows.md": ["## Windows", "## Totals record"],
        "rules.md": ["## The file", "## Breach and recovery records"],
    }
    for name, headings in sections.items():
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        for heading in headings:
            assert heading + "\n" in text, f"docs/{name} lacks {heading!r}"
