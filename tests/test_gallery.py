"""The evaluation gallery sorts and filters its rows by per-image score: the rows carry
their scores, and the page's own script (run with node) orders and filters them."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from pix2pix_lit.inference.evaluation_report import gallery_html
from pix2pix_lit.inference.gallery import SCRIPT
from pix2pix_lit.inference.scoring import Evaluation

PER_IMAGE = [
    {"name": "b", "L1": 0.30, "PSNR": 14.0, "SSIM": 0.20},
    {"name": "a", "L1": 0.10, "PSNR": 19.5, "SSIM": 0.50},
    {"name": "c<1>", "L1": 0.20, "PSNR": float("nan"), "SSIM": 0.35},
]


class GalleryRows(HTMLParser):
    """Collects the rows' data attributes and the ids and options of the controls."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.options: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and "data-name" in found:
            self.rows.append(
                {"name": found["data-name"], "scores": json.loads(found["data-scores"])}
            )
        if tag == "option":
            self.options.append(found["value"] or "")
        if "id" in found:
            self.ids.append(found["id"] or "")


def page_rows() -> GalleryRows:
    parser = GalleryRows()
    parser.feed(gallery_html(Evaluation(per_image=PER_IMAGE), {"split": "test"}))
    return parser


def test_rows_carry_their_name_and_scores() -> None:
    parsed = page_rows()
    assert parsed.rows == [
        {"name": "b", "scores": {"L1": 0.30, "PSNR": 14.0, "SSIM": 0.20}},
        {"name": "a", "scores": {"L1": 0.10, "PSNR": 19.5, "SSIM": 0.50}},
        {"name": "c<1>", "scores": {"L1": 0.20, "PSNR": None, "SSIM": 0.35}},  # NaN: unscored
    ]
    assert {"PSNR:desc", "L1:asc", "SSIM"} <= set(parsed.options)
    assert {"gallery", "sort", "filter-score", "filter-op", "filter-value", "filter-name"} <= set(
        parsed.ids
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_the_page_script_sorts_and_filters_by_score() -> None:
    calls = {
        "psnr_best_first": "sortRows(rows, 'PSNR', true)",
        "l1_best_first": "sortRows(rows, 'L1', false)",
        "name": "sortRows(rows, 'name', false)",
        "ssim_at_least": "rows.filter(r => keepRow(r, {score: 'SSIM', op: 'min', value: '0.3'}))",
        "l1_at_most": "rows.filter(r => keepRow(r, {score: 'L1', op: 'max', value: '0.2'}))",
        "psnr_at_least": "rows.filter(r => keepRow(r, {score: 'PSNR', op: 'min', value: '0'}))",
        "text": "rows.filter(r => keepRow(r, {text: 'C<', score: '', value: ''}))",
    }
    program = (
        f"{SCRIPT}\nconst rows = {json.dumps(page_rows().rows)};\nconsole.log(JSON.stringify({{"
    )
    program += ", ".join(f"{k}: {v}.map(r => r.name)" for k, v in calls.items()) + "}));"
    out = subprocess.run(["node", "-e", program], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "psnr_best_first": ["a", "b", "c<1>"],  # unscored last
        "l1_best_first": ["a", "c<1>", "b"],
        "name": ["a", "b", "c<1>"],
        "ssim_at_least": ["a", "c<1>"],
        "l1_at_most": ["a", "c<1>"],
        "psnr_at_least": ["b", "a"],
        "text": ["c<1>"],
    }
