"""The documentation cannot go stale: its links resolve, its command lines parse, its site builds."""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from eggroll_snn.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor of a markdown heading (GitHub's and MkDocs' rule for plain text)."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+://|mailto:", target):
            continue  # the web is not checked here
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{page.name}: {target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{page.name}: {target} (no such heading)")
    return broken


def command_lines(page: Path) -> list[str]:
    """Every ``eggroll-snn ...`` command shown: lines of code blocks and inline code spans."""
    text = page.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        found += [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip().startswith("eggroll-snn ")]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found += [" ".join(span.split()) for span in re.findall(r"`(eggroll-snn [^`]+)`", prose)]
    return found


_SHELL = ("|", "&", "&&", ";", ">", ">>", "2>&1", "||")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction)), {})


def unparsable(command: str) -> str | None:
    """The command if its subcommand path or one of its ``--options`` does not exist today, else None.

    Values are not checked (documentation writes placeholders such as ``--seed S``); the words after a
    shell operator belong to another program.
    """
    words = shlex.split(command)[1:]
    if any(word in _SHELL for word in words):
        words = words[: min(words.index(word) for word in words if word in _SHELL)]
    parser, rest = build_parser(), list(words)
    while _subcommands(parser) and rest and not rest[0].startswith("-"):
        if rest[0] not in _subcommands(parser):
            return command
        parser = _subcommands(parser)[rest.pop(0)]
    if _subcommands(parser) and not ({"-h", "--help", "--version"} & set(rest)):
        return command  # a command group without its subcommand
    known = {option for action in parser._actions for option in action.option_strings}
    options = [word.split("=")[0] for word in rest if word.startswith("-") and not re.fullmatch(r"-[\d.]+", word)]
    return command if any(option not in known for option in options) else None


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_command_line_shown_parses_with_todays_command_line(page, capsys):
    commands = command_lines(page)
    failing = [command for command in commands if unparsable(command)]
    capsys.readouterr()
    assert failing == []


def test_the_checks_fail_on_a_broken_link_and_an_unknown_option(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n[here](missing.md) [there](#title) [gone](#nowhere)\n\n```bash\neggroll-snn train --no-such-option 3\n```\n")
    assert broken_links(page) == ["page.md: missing.md (no such file)", "page.md: #nowhere (no such heading)"]
    assert command_lines(page) == ["eggroll-snn train --no-such-option 3"]
    assert unparsable("eggroll-snn train --no-such-option 3") and unparsable("eggroll-snn trian") and not unparsable("eggroll-snn train --generations 3")
    assert not unparsable("eggroll-snn train --seed S > log.txt") and not unparsable("eggroll-snn evaluate")
    assert unparsable("eggroll-snn data frobnicate") and unparsable("eggroll-snn evaluate RUN --nope")


def test_readme_is_a_front_page_with_the_two_set_up_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "python3 -m venv .venv && . .venv/bin/activate && python -m pip install -e . && eggroll-snn train" in text
    assert "python3 -m venv .venv && . .venv/bin/activate && python -m pip install -e '.[test]' && python -m pytest -q" in text
    for words in ("session", "issue ", "stop ", "this project's machine"):
        assert words not in text.lower(), words


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="the docs extra (mkdocs) is not installed")
def test_the_documentation_site_builds_without_a_warning(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "results" / "index.html").is_file()
