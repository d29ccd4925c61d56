"""The README and docs/: the exit table is ExitStatus, every link to a page of ours finds it,
and the README stays a page for users (≤ 250 lines; depth in docs/)."""

import re
from pathlib import Path

from resnet_cli.errors import ExitStatus

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "DEVELOPING.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readmes_exit_table_is_exit_status():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| status | meaning |") :].split("\n\n")[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", table, re.M)
    assert rows == [(str(int(status)), status.meaning) for status in ExitStatus]


def test_every_link_to_our_pages_finds_its_file_and_heading():
    def anchors(page: Path) -> set[str]:
        titles = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
        return {re.sub(r"[^\w\- ]", "", t.lower()).replace(" ", "-") for t in titles}

    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: {target}"
            if anchor and linked.suffix == ".md":
                assert anchor in anchors(linked), f"{page.name}: {target}"


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
