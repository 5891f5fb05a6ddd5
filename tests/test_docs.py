"""The docs are a map of the tree: every relative link in the README and docs/ names a file or directory that
exists in the repository, so a move that forgets its docs fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# [text](target) outside code spans; external links and pure anchors are not files.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+://|mailto:|#", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_names_something_in_the_repository(page):
    missing, outside = [], []
    for target in relative_links(page):
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(REPO):
            outside.append(target)
        elif not path.exists():
            missing.append(target)
    assert not outside, f"{page.relative_to(REPO)} links outside the repository: {outside}"
    assert not missing, f"{page.relative_to(REPO)} links to paths that do not exist: {missing}"


def test_the_pages_have_links():
    assert sum(len(relative_links(page)) for page in PAGES) > 50
