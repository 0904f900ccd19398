"""Results file + executed notebooks -> one self-contained HTML report. The only nbconvert import.

The page works offline and asks the network for nothing: no CDN, no external script, font or
image (images are ``data:`` URIs, style and script are inline). It has a header with the verdict,
commit and tree state; a table of every case that is sortable and filterable by outcome; and, per
case that did not pass, the executed notebook rendered by nbconvert with the failing cell
highlighted and an anchor the table links to, and the snapshot diff when outputs differ. Passed
cases link to their executed notebook instead of embedding it, so a report of 1,000 cases stays
small: at most ``MAX_RENDERED`` notebooks are rendered, failures first.

Notebook content is trusted with nothing: the report is opened from the CI artifacts of pull
requests, and anyone who can open one writes the notebooks, their outputs and error messages.

- The page is a Jinja2 template with autoescape on, so every value from the results file or a
  notebook is text; the page's own style and scripts are the only markup inserted as is.
- Each rendered notebook is a document of its own, in ``<iframe sandbox="" srcdoc="...">``. The
  empty ``sandbox`` gives it an opaque origin, no scripts (nor ``javascript:`` links), no forms,
  popups, top-level navigation or meta refresh; its CSS styles only itself; and it carries its own
  policy (``FRAME_CSP``).
- The page's policy (``CSP``), which a srcdoc frame inherits, runs only the page's two scripts (by
  hash), fetches nothing but ``data:`` images, and has ``frame-src 'none'``: a srcdoc document is
  not fetched, so this stops only a frame navigating elsewhere, such as a link clicked in it.
- ``<link``, ``<iframe`` and ``<frame`` in a rendered notebook are made text: ``rel=preconnect``
  and a frame's navigation open a connection to their host that neither a CSP directive nor a
  sandbox flag stops (Chromium 150 connects, then blocks the navigation). No element can arise in
  the frame without its start tag in the text, so making that tag text removes it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from pytest_notebooks.cases.notebook import ERROR_MARKER_TAG
from pytest_notebooks.files import is_url
from pytest_notebooks.models import CellChange
from pytest_notebooks.results.record import CaseRecord, NotebookRecord, Outcome, ResultsDocument

MAX_RENDERED = 50  # notebooks rendered with nbconvert in one report (about 0.1-0.4 s each)
FAILING_TAG = "pytest-notebooks-failing"
ANCHOR_TAG = "pytest-notebooks-anchor"  # the "failed in the next cell" marker: its frame opens scrolled to it
_GOOD = ("passed", "xfailed")  # shown green; "skipped" and "not run" grey, the rest red
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 2em 4em;color:#1b1f24}
header h1{font-size:1.6em;margin:.6em 0 .2em}
.meta{color:#57606a}
.verdict-failed{color:#b42318}
.verdict-passed{color:#1a7f37}
nav button{margin:.2em .3em .2em 0;padding:.2em .7em;border:1px solid #d0d7de;border-radius:1em;cursor:pointer}
nav button.active{background:#0969da;color:#fff;border-color:#0969da}
table{border-collapse:collapse;width:100%;margin:1em 0}
th,td{border-bottom:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}
th{cursor:pointer;background:#f6f8fa;user-select:none}
td.num{text-align:right;white-space:nowrap}
td,section.case p{overflow-wrap:anywhere}
tr.hidden{display:none}
code,pre{font:12px/1.4 ui-monospace,monospace}
pre{white-space:pre-wrap;margin:.2em 0}
section.case{border:1px solid #d0d7de;border-radius:6px;margin:1.5em 0;padding:0 1em 1em}
section.case h2{font-size:1.15em}
iframe.notebook{display:block;box-sizing:border-box;width:100%;height:75vh;min-height:20em;border:1px solid #d0d7de}
.side{display:flex;gap:1em}
.side>div{flex:1;min-width:0;overflow:auto;border:1px solid #d0d7de;padding:.5em}
.diff-add{color:#1a7f37}
.diff-del{color:#b42318}
.badge{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;font-weight:600;color:#fff}
.badge.good{background:#1a7f37}
.badge.bad{background:#cf222e}
.badge.neutral{background:#6e7781}
"""
# Inside each notebook's frame (nbconvert's "basic" template has classes but no style of its own).
NOTEBOOK_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:.5em 1em;color:#1b1f24;background:#fff}
code,pre{font:12px/1.4 ui-monospace,monospace}
pre{white-space:pre-wrap;margin:.2em 0}
.cell{margin:.4em 0;padding:.3em .5em;border-left:3px solid transparent}
.celltag_pytest-notebooks-failing{border-left:6px solid #d1242f;background:#fff0f0;outline:2px solid #d1242f}
.celltag_pytest-notebooks-anchor{scroll-initial-target:nearest}
.celltag_papermill-error-cell-tag{display:none}
.prompt{color:#57606a;font:11px ui-monospace,monospace}
.output_error pre,.output_stderr pre{background:#fff0f0}
.input_area{background:#f6f8fa;padding:.2em .4em}
.ansi-red-fg{color:#b42318}
.ansi-green-fg{color:#1a7f37}
img{max-width:100%}
"""
# Counts what the page asked the network for and what the policy blocked (data-resources and
# data-blocked on <body>), so a test in a real browser can check that the report is self-contained.
WATCH = (
    "window.__blocked=[];"
    "document.addEventListener('securitypolicyviolation',function(e){__blocked.push(e.blockedURI);});"
)
SCRIPT = """
(function(){
  var rows=[].slice.call(document.querySelectorAll('#cases tbody tr'));
  var buttons=[].slice.call(document.querySelectorAll('nav button'));
  buttons.forEach(function(b){b.addEventListener('click',function(){
    buttons.forEach(function(o){o.classList.toggle('active',o===b);});
    var want=b.getAttribute('data-outcome');
    rows.forEach(function(r){r.classList.toggle('hidden',want!=='all'&&r.getAttribute('data-outcome')!==want);});
  });});
  [].slice.call(document.querySelectorAll('#cases th')).forEach(function(th,col){
    th.addEventListener('click',function(){
      var body=document.querySelector('#cases tbody'), asc=th.getAttribute('data-dir')!=='asc';
      th.setAttribute('data-dir',asc?'asc':'desc');
      rows.sort(function(a,b){
        var x=a.children[col].getAttribute('data-key')||a.children[col].textContent;
        var y=b.children[col].getAttribute('data-key')||b.children[col].textContent;
        var nx=parseFloat(x),ny=parseFloat(y),c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
        return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  document.body.setAttribute('data-resources',String(performance.getEntriesByType('resource').length));
  document.body.setAttribute('data-blocked',String(window.__blocked.length));
  document.body.setAttribute('data-ready','yes');
})();
"""


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


CSP = "; ".join(
    [
        "default-src 'none'",
        "img-src data:",
        # 'unsafe-inline' for the notebook frames, which inherit this policy: nbconvert's and pandas'
        # styles are inline. Nothing from a notebook reaches this page as markup.
        "style-src 'unsafe-inline'",
        f"script-src {_sha256(WATCH)} {_sha256(SCRIPT)}",
        "frame-src 'none'",
        "form-action 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
assert not set('"&<>') & set(CSP), "CSP is written into the page as is"
FRAME_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'"
# The start tags whose elements connect to their URL's host before any policy check (Chromium 150):
# <link rel=preconnect>, and <iframe>/<frame>, whose blocked navigation is preconnected all the same.
_CONNECTS = re.compile(r"<(?=link|i?frame)", re.IGNORECASE)

PAGE = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp|safe }}">
<title>Notebook tests: {{ summary }}</title>
<style>{{ style|safe }}</style>
<script>{{ watch|safe }}</script></head><body>
{% macro badge(outcome) %}<span class="badge {{ badge_kind(outcome) }}">{{ outcome }}</span>{% endmacro %}
<header>
<h1 class="verdict-{{ verdict }}">{{ badge(verdict) }} Notebook tests: {{ summary }}</h1>
<p class="meta">commit <code>{{ commit }}</code> on {{ branch }}, {{ tree }};
session {{ state }}; written {{ created }}</p>
</header>
<nav><button class="active" data-outcome="all">all</button>
{%- for outcome, n in counts %}<button data-outcome="{{ outcome }}">{{ outcome }} ({{ n }})</button>{% endfor %}</nav>
<table id="cases"><thead><tr>{% for name in columns %}<th>{{ name }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}
<tr data-outcome="{{ row.outcome }}"><td data-key="{{ row.outcome }}">{{ badge(row.outcome) }}</td>
<td><code>{{ row.notebook }}</code></td><td>{{ row.case }}</td>
<td class="num" data-key="{{ '%.3f'|format(row.seconds) }}">{{ '%.1f'|format(row.seconds) }} s</td>
<td>{% if row.link %}<a href="#{{ row.anchor }}">{{ row.link }}</a>{% endif %}</td><td>{{ row.where }}</td>
<td>{% if row.href %}<a href="{{ row.href }}"><code>{{ row.output }}</code></a>
{%- elif row.output %}<code>{{ row.output }}</code>{% endif %}</td></tr>
{% endfor %}
</tbody></table>
{% for s in sections %}
<section class="case" id="{{ s.anchor }}"><h2>{{ s.title }}</h2>
{% if s.summary %}<p><strong>{{ s.summary }}</strong></p>{% endif %}
{% if s.href %}<p>executed notebook: <a href="{{ s.href }}"><code>{{ s.output }}</code></a></p>
{%- elif s.output %}<p>executed notebook: <code>{{ s.output }}</code></p>{% endif %}
{% for c in s.changes %}
<h3>snapshot: cell {{ c.number }} ({{ c.kind }})</h3>
<div class="side"><div><strong>snapshot</strong><pre>{{ c.old }}</pre></div>
<div><strong>this run</strong><pre>{{ c.new }}</pre></div></div>
{% endfor %}
{% if s.srcdoc is not none %}
<iframe class="notebook" sandbox="" title="executed notebook {{ s.title }}" srcdoc="{{ s.srcdoc }}"></iframe>
{% elif s.note %}
<p>{{ s.note }}</p>
{% endif %}
</section>
{% endfor %}
{% if principles %}
<section id="principles"><h2>Principles</h2><table><tr>
{%- for h in ("notebook", "branches", "definitions", "code cells", "lines", "principles") %}<th>{{ h }}</th>
{%- endfor %}</tr>
{% for p in principles %}
<tr><td><code>{{ p.path }}</code></td><td>{{ p.branches }}</td><td>{{ p.definitions }}</td><td>{{ p.code_cells }}</td>
<td>{{ p.lines }}</td>
<td>{% if p.broken %}{{ badge("failed") }} {{ p.broken }}{% else %}{{ badge("passed") }}{% endif %}</td></tr>
{% endfor %}
</table></section>
{% endif %}
{% if changes %}
<section id="template-changes"><h2>Template changes</h2><pre>
{%- for kind, line in changes %}{% if kind %}<span class="{{ kind }}">{{ line }}</span>{% else %}{{ line }}{% endif %}
{{- "\\n" if not loop.last else "" }}{% endfor %}</pre></section>
{% endif %}
<script>{{ script|safe }}</script></body></html>
"""


@dataclass(frozen=True)
class _Row:
    outcome: str
    notebook: str
    case: str
    seconds: float
    anchor: str
    link: str
    where: str
    output: str
    href: str  # the executed notebook, relative to the report's folder; "" when there is none to link


@dataclass(frozen=True)
class _Change:
    number: str
    kind: str
    old: str
    new: str


@dataclass(frozen=True)
class _Section:
    anchor: str
    title: str
    summary: str
    output: str
    href: str
    changes: list[_Change]
    srcdoc: str | None  # the rendered notebook as a document of its own, else None and a note
    note: str


def _badge_kind(outcome: str) -> str:
    return "good" if outcome in _GOOD else "neutral" if outcome in ("skipped", "not run") else "bad"


_TEMPLATE = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
).from_string(PAGE, globals={"badge_kind": _badge_kind})


def render_html(
    results: ResultsDocument | None,
    rootdir: Path,
    *,
    changes_text: str = "",
    max_rendered: int = MAX_RENDERED,
    report_dir: Path | None = None,
) -> str:
    """The report as one HTML document. ``rootdir`` resolves the cases' relative output paths;
    ``changes_text`` is the template changes as text (``nbreview --format text``), when a base
    revision was given. Without results, the report says so (and shows the changes). ``report_dir``
    is the folder the report is written to: each executed notebook is linked relative to it, so the
    links open from the report's folder and from a CI artifact holding both."""
    cases = _ordered(results.cases if results else ())
    counts = Counter(c.outcome.value for c in cases)
    roots = _output_roots(rootdir, results.output_dir if results else "")
    sections: list[_Section] = []
    for index, case in enumerate(cases):
        if _looked_at(case):
            section = _section(index, case, roots, embed=len(sections) < max_rendered)
            sections.append(dataclasses.replace(section, href=_href(case.output or "", roots, report_dir)))
    git = results.git if results else None
    return _TEMPLATE.render(
        csp=CSP,
        style=STYLE,
        watch=WATCH,
        script=SCRIPT,
        summary=", ".join(f"{n} {outcome}" for outcome, n in counts.most_common()) or "no cases",
        verdict="passed" if cases and all(c.outcome.ok for c in cases) else "failed",
        commit=((git.commit if git else None) or "no commit")[:12],
        branch=(git.branch if git else None) or "-",
        tree="uncommitted changes in the tested tree" if git and git.dirty else "clean tree",
        state=results.session.state.value if results else "-",
        created=results.created if results else "-",
        counts=sorted(counts.items()),
        columns=("outcome", "notebook", "case", "duration", "failing cell", "error", "executed notebook"),
        rows=[
            dataclasses.replace(_row(index, case), href=_href(case.output or "", roots, report_dir))
            for index, case in enumerate(cases)
        ],
        sections=sections,
        principles=_principles(results.notebooks if results else ()),
        changes=[_diff_kind(line) for line in changes_text.splitlines()],
    )


def _looked_at(case: CaseRecord) -> bool:
    """A case with a section of its own: one that ran and is not ok (a failure, an xpass)."""
    return not case.outcome.ok and case.outcome is not Outcome.NOT_RUN


def _ordered(cases: Sequence[CaseRecord]) -> list[CaseRecord]:
    """Failures first, then by node id (the review table's order)."""
    return sorted(cases, key=lambda c: (not _looked_at(c), c.nodeid))


def _row(index: int, case: CaseRecord) -> _Row:
    failure = case.failure
    cell = f"cell {failure.cell}" if failure is not None and failure.cell else ""
    return _Row(
        outcome=case.outcome.value,
        notebook=case.notebook,
        case=case.case,
        seconds=case.duration,
        anchor=f"case-{index}",
        link=(cell or "details") if _looked_at(case) else "",
        where=_short(case.summary()),
        output=case.output or "",
        href="",
    )


def _output_roots(rootdir: Path, output_dir: str) -> tuple[Path, ...]:
    """Where executed notebooks may be read from: the results' output directory and the rootdir."""
    roots = [rootdir.resolve()]
    if output_dir and not is_url(output_dir):
        roots.append((rootdir / output_dir).resolve())
    return tuple(roots)


def _href(output: str, roots: tuple[Path, ...], report_dir: Path | None) -> str:
    """A link to the executed notebook from the report's folder: only to a notebook ``_readable``
    accepts, percent-encoded, and starting with ``./`` so that no path reads as a scheme
    (``javascript:...``); "" for a remote output or when the report's folder is not known."""
    if report_dir is None or not output or is_url(output):
        return ""
    path = _readable(output, roots)
    if path is None:
        return ""
    relative = Path(os.path.relpath(path, report_dir.resolve())).as_posix()
    return urllib.parse.quote(relative if relative.startswith("../") else f"./{relative}")


def _readable(output: str, roots: tuple[Path, ...]) -> Path | None:
    """The executed notebook at ``output``, if it is a notebook inside ``roots``: a results file written
    by a pull request's code must not make the report embed another file of the machine that builds it."""
    path = (roots[0] / output).resolve()  # an absolute output stays absolute
    if path.suffix != ".ipynb" or not any(path.is_relative_to(root) for root in roots):
        return None
    return path


def _section(index: int, case: CaseRecord, roots: tuple[Path, ...], embed: bool) -> _Section:
    output = case.output or ""
    srcdoc, note = None, ""
    if embed and output and not is_url(output):
        path = _readable(output, roots)
        if path is None:
            note = "(not rendered: the results file names no executed notebook of this run here)"
        else:
            srcdoc, note = _notebook(path)
    elif output:
        note = "(not rendered here: see the executed notebook)"
    return _Section(
        anchor=f"case-{index}",
        title=f"{case.notebook}::{case.case}: {case.outcome}",
        summary=case.summary(),
        output=output,
        href="",
        changes=[_snapshot_change(change) for change in (case.snapshot.changes if case.snapshot else ())],
        srcdoc=srcdoc,
        note=note,
    )


def _principles(notebooks: Sequence[NotebookRecord]) -> list[dict[str, str]]:
    """The principles' measures per notebook, when the session measured them (--notebooks-lint)."""
    rows = []
    for nb in notebooks:
        measures = nb.principles.measures if nb.principles is not None else None
        if nb.principles is None or measures is None:
            continue
        rows.append(
            {
                "path": nb.path,
                "branches": str(measures.branches),
                "definitions": str(len(measures.definitions)),
                "code_cells": str(measures.code_cells),
                "lines": str(measures.lines),
                "broken": "; ".join(v.message for v in nb.principles.violations),
            }
        )
    return rows


def _snapshot_change(change: CellChange) -> _Change:
    """One changed cell of a snapshot comparison: the snapshot's lines beside this run's."""
    lines = change.output_diff or change.source_diff
    old = [line[1:] for line in lines if line.startswith("-") and not line.startswith("---")]
    new = [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")]
    return _Change(
        number=str(change.head_number or change.base_number),
        kind=change.kind,
        old="\n".join(old),
        new="\n".join(new),
    )


def _notebook(path: Path) -> tuple[str | None, str]:
    """The executed notebook as the document of its frame (nbconvert's ``basic`` template: no head,
    no external files), or None and why not."""
    try:
        import nbformat
        from nbconvert import HTMLExporter

        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        _tag_failing_cell(nb)
        body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    except OSError as exc:
        return None, f"cannot read the executed notebook: {exc}"
    except Exception as exc:  # noqa: BLE001 - a notebook nbconvert cannot render must not lose the report
        return None, f"nbconvert could not render it: {type(exc).__name__}: {exc}"
    return _frame_document(str(body)), ""


def _frame_document(body: str) -> str:
    """A notebook's HTML as the document of a sandboxed frame: its own policy first, then our style.
    ``<link``, ``<iframe`` and ``<frame`` become text (see the module docstring). A link to ``#x``
    points at ``about:srcdoc#x``: a srcdoc document resolves ``#x`` against the page's URL, and
    following it would leave the document (``frame-src 'none'`` blocks that) instead of scrolling."""
    body = _CONNECTS.sub("&lt;", body).replace('href="#', 'href="about:srcdoc#')
    return (
        f'<!doctype html><html><head><meta http-equiv="Content-Security-Policy" content="{FRAME_CSP}">'
        f"<style>{NOTEBOOK_STYLE}</style></head><body>{body}</body></html>"
    )


def _tag_failing_cell(nb: dict[str, Any]) -> None:
    """Tag the cell after the anchor that execution put before the failing cell."""
    cells = nb.get("cells", [])
    for index, cell in enumerate(cells):
        tags = cell.get("metadata", {}).get("tags", [])
        source = "".join(cell.get("source", ""))
        if ERROR_MARKER_TAG in tags and 'id="pytest-notebooks-failure"' in source and index + 1 < len(cells):
            following = cells[index + 1].setdefault("metadata", {})
            following["tags"] = [*following.get("tags", []), FAILING_TAG]
            # keep the anchor visible (the marker tag hides it), and open the frame scrolled to it
            cell["metadata"]["tags"] = [*(t for t in tags if t != ERROR_MARKER_TAG), ANCHOR_TAG]
            return


def _diff_kind(line: str) -> tuple[str, str]:
    return ("diff-add" if line.startswith("+") else "diff-del" if line.startswith("-") else ""), line


def _short(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
