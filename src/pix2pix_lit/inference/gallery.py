"""Sorting and filtering for the evaluation gallery (``index.html``).

Each image's row carries its name and scores as data attributes; a small script orders the
rows by any score and hides those outside a score bound or without a name fragment. The page
stays one self-contained file that opens from disk (no server, no library).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

TABLE_ID = "gallery"

# sortRows and keepRow are plain functions over {name, scores} objects, so they run (and are
# tested) without a browser; the rest ties them to the page.
SCRIPT = r"""
function sortRows(rows, key, descending) {
  const sign = descending ? -1 : 1;
  const byName = (a, b) => a.name.localeCompare(b.name);
  return rows.slice().sort((a, b) => {
    if (key === "name") return sign * byName(a, b);
    const x = a.scores[key], y = b.scores[key];
    if (x == null || y == null) return (x == null) - (y == null);  // unscored rows last
    return sign * (x - y) || byName(a, b);
  });
}

function keepRow(row, filter) {
  if (filter.text && !row.name.toLowerCase().includes(filter.text.toLowerCase())) return false;
  if (!filter.score || filter.value === "" || isNaN(Number(filter.value))) return true;
  const value = row.scores[filter.score];
  if (value == null) return false;
  return filter.op === "min" ? value >= Number(filter.value) : value <= Number(filter.value);
}

// the script comes before the table: wire the page up once it is parsed
if (typeof document !== "undefined") document.addEventListener("DOMContentLoaded", () => {
  const byId = (id) => document.getElementById(id);
  const body = byId("gallery").tBodies[0];  // TABLE_ID
  const rows = Array.from(body.querySelectorAll("tr[data-name]"), (tr) => (
    {name: tr.dataset.name, scores: JSON.parse(tr.dataset.scores), tr}));
  const update = () => {
    const [key, direction] = byId("sort").value.split(":");
    const filter = {text: byId("filter-name").value, score: byId("filter-score").value,
                    op: byId("filter-op").value, value: byId("filter-value").value};
    let shown = 0;
    for (const row of sortRows(rows, key, direction === "desc")) {
      row.tr.hidden = !keepRow(row, filter);
      shown += !row.tr.hidden;
      body.appendChild(row.tr);
    }
    byId("shown").textContent = `${shown} of ${rows.length} images shown`;
  };
  for (const id of ["sort", "filter-name", "filter-score", "filter-op", "filter-value"]) {
    byId(id).addEventListener("input", update);
  }
  update();
});
"""


def score_names(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The per-image score names (float values), in first-seen order."""
    names: dict[str, None] = {}
    for record in records:
        names.update((k, None) for k, v in record.items() if isinstance(v, float))
    return list(names)


def row_attributes(record: Mapping[str, Any]) -> str:
    """`` data-name=... data-scores=...`` for an image's ``<tr>`` (non-finite scores: null)."""
    scores = {k: v if math.isfinite(v) else None for k, v in record.items() if isinstance(v, float)}
    name = html.escape(str(record["name"]))
    return f' data-name="{name}" data-scores="{html.escape(json.dumps(scores))}"'


def controls(names: list[str]) -> str:
    """The sort and filter controls and their script, to put before the gallery table."""
    esc = html.escape
    sort = ['<option value="name:asc">name</option>'] + [
        f'<option value="{esc(n)}:{d}">{esc(n)} {label}</option>'
        for n in names
        for d, label in (("asc", "ascending"), ("desc", "descending"))
    ]
    scores = "".join(f'<option value="{esc(n)}">{esc(n)}</option>' for n in names)
    return f"""<p>
Sort by <select id="sort">{"".join(sort)}</select>
&nbsp; Show images whose <select id="filter-score"><option value="">(score)</option>{scores}</select>
is <select id="filter-op"><option value="min">at least</option><option value="max">at most</option></select>
<input id="filter-value" type="number" step="any" size="8">
&nbsp; name contains <input id="filter-name" size="12">
&nbsp; <span id="shown"></span>
</p>
<script>{SCRIPT}</script>"""
