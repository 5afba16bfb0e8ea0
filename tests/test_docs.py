"""The docs stay usable: README.md is a front page, not a manual; every link in it and in
docs/ leads to a file that exists (and to a heading that exists, for links into markdown);
the API reference documents every name refresher exports.

`make docs` (run by `make test`) builds the site with `mkdocs build --strict`, which checks
the site's own links; these checks also cover README.md, which is not part of the site, and
hold for the markdown read as it is on a forge.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest
from pymdownx.slugs import slugify

import refresher
from refresher.core.options import Options
from refresher.core.protocol.outcomes import Outcome

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...
SLUG = slugify(case="lower")  # the site's toc slugify (mkdocs.yml): GitHub's slugs


def prose(page: Path) -> str:
    """The page without code: a link-shaped string in a code block is not a link."""
    return CODE_SPAN.sub("", FENCE.sub("", page.read_text()))


def anchors(page: Path) -> set[str]:
    return {SLUG(heading, "-") for heading in HEADING.findall(FENCE.sub("", page.read_text()))}


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page)) if not EXTERNAL.match(target)]


def broken(page: Path, target: str) -> str | None:
    """Why `target`, linked from `page`, leads nowhere; None if it leads somewhere."""
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    if not dest.exists():
        return f"{dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest} does not exist"
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return f"{dest.relative_to(ROOT)} has no heading #{anchor}"
    return None


def test_readme_is_a_front_page() -> None:
    lines = README.read_text().count("\n")
    assert lines < 300, f"README.md has {lines} lines: move the detail into a page under docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    problems = [f"{target}: {why}" for target in links(page) if (why := broken(page, target))]
    assert not problems, f"{page.relative_to(ROOT)}: " + "; ".join(problems)


def test_the_link_check_sees_links_and_headings() -> None:
    """The regular expressions find what they must: otherwise the test above passes on
    pages whose links it never read."""
    assert "docs/getting-started.md" in links(README)
    assert "../reliability.md#10-a-master-fails-over-redis-cluster-sentinel" in links(
        DOCS / "howto" / "cluster-sentinel.md"
    )
    assert "10-a-master-fails-over-redis-cluster-sentinel" in anchors(DOCS / "reliability.md")
    assert broken(README, "docs/no-such-page.md") == "docs/no-such-page.md does not exist"
    assert broken(README, "docs/reliability.md#no-such-heading") is not None


def test_api_reference_documents_every_public_name() -> None:
    reference = "\n".join(page.read_text() for page in sorted((DOCS / "reference").glob("*.md")))
    documented = set(re.findall(r"^:::\s+refresher\.(\w+)\s*$", reference, re.MULTILINE))
    names = {name for name in refresher.__all__ if not name.startswith("__")}  # __version__ is no API object
    public = {name for name, value in vars(refresher).items() if not name.startswith("_") and not inspect.ismodule(value)}
    assert public <= names, f"public in refresher but not in __all__: {sorted(public - names)}"
    missing = sorted(names - documented)
    assert not missing, f"add `::: refresher.NAME` to docs/reference/api.md for: {', '.join(missing)}"


@pytest.mark.parametrize("module", ["refresher.worker", "refresher.contrib.django"])
def test_api_reference_documents_the_functions_of_the_integration_modules(module: str) -> None:
    """Their `__all__` also names objects built on first use (the worker `app`, Django's
    `cache`), which the page describes in prose; every function there has its entry."""
    imported = importlib.import_module(module)
    functions = {name for name in imported.__all__ if inspect.isfunction(vars(imported).get(name))}
    page = (DOCS / "reference" / "api.md").read_text()
    assert functions, module
    assert not {name for name in functions if f"::: {module}.{name}\n" not in page}, functions


def test_the_options_page_lists_every_keyword_of_refresher_and_of_a_loader() -> None:
    """docs/reference/options.md is where a newcomer looks up what `stale_ttl` does: a
    keyword added to `Refresher(...)` or a loader option added to `Options` must get a row."""
    rows = set(re.findall(r"^\|\s*`(\*{0,2}\w+)`\s*\|", (DOCS / "reference" / "options.md").read_text(), re.MULTILINE))
    keywords = {f"**{p.name}" if p.kind is p.VAR_KEYWORD else p.name
                for p in inspect.signature(refresher.Refresher.__init__).parameters.values() if p.name != "self"}
    options = {field.name for field in dataclasses.fields(Options)}
    missing = sorted((keywords | options) - rows)
    assert not missing, f"docs/reference/options.md has no row for: {', '.join(missing)}"


def test_the_environment_page_lists_every_variable_refresher_reads() -> None:
    """Every `REFRESHER_*` name the package spells out as a string has a row in
    docs/reference/environment.md, the one place a newcomer looks them up."""
    read = {name for source in (ROOT / "refresher").rglob("*.py")
            for name in re.findall(r"[\"'](REFRESHER_[A-Z0-9_]+)[\"']", source.read_text())}
    rows = set(re.findall(r"^\|\s*`(REFRESHER_[A-Z0-9_]+)`", (DOCS / "reference" / "environment.md").read_text(),
                          re.MULTILINE))
    assert "REFRESHER_REDIS_URL" in read and "REFRESHER_REDIS_URL" in rows  # the patterns see names
    assert not read - rows, f"docs/reference/environment.md has no row for: {', '.join(sorted(read - rows))}"


def test_the_task_outcomes_page_has_a_row_for_every_outcome() -> None:
    """Flower's results, the log lines' `outcome` and the metrics' label take these values."""
    page = (DOCS / "reference" / "task-outcomes.md").read_text()
    missing = [outcome.value for outcome in Outcome if f"| `{outcome.value}` |" not in page]
    assert not missing, f"docs/reference/task-outcomes.md has no row for: {', '.join(missing)}"
