"""Every figure a README shows is a file of the repository that a command named in the same
README regenerates: the studies' report.png by ``pix2pix_lit.report --readme`` (which writes
the block that shows it), the main README's samples by the training command in its caption."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pix2pix_lit.reporting.jobs import load_jobs
from pix2pix_lit.reporting.table import BEGIN_MARKER, END_MARKER, FIGURE_FILE, markdown_table

REPO = Path(__file__).resolve().parents[1]
STUDIES = sorted((REPO / "experiments").glob("*/README.md"))
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def commands(readme: str) -> str:
    """The text of the README's fenced code blocks, continuation lines joined."""
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, re.S)
    return "\n".join(blocks).replace("\\\n", " ")


def report_block(text: str) -> str:
    return text.split(BEGIN_MARKER, 1)[1].split(END_MARKER, 1)[0]


def test_every_study_names_its_command() -> None:
    assert len(STUDIES) >= 6
    command = re.compile(r"^(?:[A-Z_]+=\S+ )*(?:python|make|\S+\.sh)\b", re.M)
    for readme in STUDIES:
        assert command.search(commands(readme.read_text())), f"{readme.parent.name}: no command"


@pytest.mark.parametrize("readme", STUDIES, ids=lambda p: p.parent.name)
def test_study_figures_are_written_by_the_report_command_the_readme_names(readme: Path) -> None:
    text = readme.read_text()
    for figure in IMAGE.findall(text):
        assert (readme.parent / figure).is_file(), f"{readme}: {figure} is missing"
        assert figure == FIGURE_FILE, f"{readme}: {figure} is not the report's figure"
        assert f"({figure})" in report_block(text), f"{readme}: {figure} outside the report block"
        relative = readme.relative_to(REPO).as_posix()
        assert re.search(
            rf"python -m pix2pix_lit\.report \S+.*--readme {re.escape(relative)}",
            commands(text),
        ), f"{readme}: no `python -m pix2pix_lit.report ... --readme {relative}` command"


RECORDED = [
    readme
    for readme in STUDIES
    if re.search(
        r"python -m pix2pix_lit\.report experiments/records/", commands(readme.read_text())
    )
]


@pytest.mark.parametrize("readme", RECORDED, ids=lambda p: p.parent.name)
def test_a_report_block_made_from_committed_records_is_what_they_make_now(readme: Path) -> None:
    """A table pasted from records that were later replaced or added to would misdescribe them."""
    text = readme.read_text()
    relative = readme.relative_to(REPO).as_posix()
    for match in re.finditer(r"python -m pix2pix_lit\.report ([^\n]*)", commands(text)):
        words = match.group(1).split()
        if "--readme" not in words or words[words.index("--readme") + 1] != relative:
            continue
        dirs = [
            REPO / word
            for word in words[: next(i for i, w in enumerate(words) if w.startswith("--"))]
        ]
        assert all(d.is_dir() for d in dirs), f"{readme}: {dirs} not all in the repository"
        assert markdown_table(load_jobs(dirs)).strip() in report_block(text), (
            f"{readme}: its report block differs from what {match.group(0)} makes now; rerun it"
        )
        return
    pytest.fail(f"{readme}: no report command with --readme {relative}")


def test_readme_picture_is_in_the_repo_and_its_caption_names_the_command() -> None:
    text = (REPO / "README.md").read_text()
    first_screen = "\n".join(text.splitlines()[:60])
    (picture,) = IMAGE.findall(first_screen)
    path = REPO / picture
    assert path.is_file() and path.stat().st_size < 400_000
    caption = text.split(picture, 1)[1].split("\n\n")[1]  # the paragraph below it
    # the command that made it, with an experiment config that exists
    (experiment,) = re.findall(r"`pix2pix-train experiment=(\w+) ", caption.replace("\n", " "))
    assert (REPO / "conf" / "experiment" / f"{experiment}.yaml").is_file()
