"""Results file + executed notebooks -> one self-contained HTML report. The only nbconvert import.

The page works offline and asks the network for nothing: no CDN, no external script, font or
image (a Content-Security-Policy in the page forbids it: images are ``data:`` URIs, style and script
are inline). It has a header with the verdict, commit and tree state; a table of every case that is
sortable and filterable by outcome; and, per case that did not pass, the executed notebook rendered
by nbconvert with the failing cell highlighted and an anchor the table links to, and the snapshot
diff when outputs differ. Passed cases link to their executed notebook instead of embedding it, so
a report of 1,000 cases stays small: at most ``MAX_RENDERED`` notebooks are rendered, failures first.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_notebooks.cases.notebook import ERROR_MARKER_TAG
from pytest_notebooks.files import is_url
from pytest_notebooks.results.read import flaky_note

MAX_RENDERED = 50  # notebooks rendered with nbconvert in one report (about 0.1-0.4 s each)
FAILING_TAG = "pytest-notebooks-failing"
PASSED = ("passed", "xfailed", "skipped")
_GOOD = ("passed", "xfailed")  # shown green; "skipped" and "not run" grey, the rest red
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
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
tr.hidden{display:none}
code,pre{font:12px/1.4 ui-monospace,monospace}
section.case{border:1px solid #d0d7de;border-radius:6px;margin:1.5em 0;padding:0 1em 1em}
section.case h2{font-size:1.15em}
.cell{margin:.4em 0;padding:.3em .5em;border-left:3px solid transparent}
.celltag_pytest-notebooks-failing{border-left:6px solid #d1242f;background:#fff0f0;outline:2px solid #d1242f}
.celltag_papermill-error-cell-tag{display:none}
.prompt{color:#57606a;font:11px ui-monospace,monospace}
pre{white-space:pre-wrap;margin:.2em 0}
.output_error pre,.output_stderr pre{background:#fff0f0}
.input_area{background:#f6f8fa;padding:.2em .4em}
.side{display:flex;gap:1em}
.side>div{flex:1;min-width:0;overflow:auto;border:1px solid #d0d7de;padding:.5em}
.diff-add{color:#1a7f37}
.diff-del{color:#b42318}
.ansi-red-fg{color:#b42318}
.ansi-green-fg{color:#1a7f37}
img{max-width:100%}
.badge{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;font-weight:600;color:#fff}
.badge.good{background:#1a7f37}
.badge.bad{background:#cf222e}
.badge.neutral{background:#6e7781}
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


def render_html(
    results: dict[str, Any],
    rootdir: Path,
    *,
    changes_text: str = "",
    max_rendered: int = MAX_RENDERED,
) -> str:
    """The report as one HTML document. ``rootdir`` resolves the cases' relative output paths;
    ``changes_text`` is the template changes as text (``nbreview --format text``), when a base
    revision was given."""
    cases = _ordered(results.get("cases", []))
    counts = Counter(str(c.get("outcome")) for c in cases)
    bad = sum(n for outcome, n in counts.items() if outcome not in PASSED)
    verdict = "passed" if not bad and cases else "failed"
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    git = results.get("git") or {}
    commit = str(git.get("commit") or "no commit")[:12]
    tree = "uncommitted changes in the tested tree" if git.get("dirty") else "clean tree"
    session = results.get("session") or {}
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>Notebook tests: {_e(summary or 'no cases')}</title>",
        f"<style>{STYLE}</style>",
        f"<script>{WATCH}</script></head><body>",
        "<header>",
        f'<h1 class="verdict-{verdict}">{_badge(verdict)} Notebook tests: {_e(summary or "no cases")}</h1>',
        f'<p class="meta">commit <code>{_e(commit)}</code> on {_e(str(git.get("branch") or "-"))}, {_e(tree)}; '
        f"session {_e(str(session.get('state', '-')))}; written {_e(str(results.get('created', '-')))}</p>",
        "</header>",
        _filters(counts),
        _table(cases),
    ]
    rendered = 0
    for index, case in enumerate(cases):
        if case.get("outcome") in PASSED or case.get("outcome") == "not run":
            continue
        embed = rendered < max_rendered
        rendered += embed
        parts.append(_section(index, case, rootdir, embed))
    parts.append(_principles(results.get("notebooks", [])))
    if changes_text:
        parts.append(
            f'<section id="template-changes"><h2>Template changes</h2><pre>{_diff(changes_text)}</pre></section>'
        )
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _ordered(cases: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failures first, then by node id (the review table's order)."""
    return sorted(cases, key=lambda c: (c.get("outcome") in (*PASSED, "not run"), str(c.get("nodeid"))))


def _filters(counts: Counter[str]) -> str:
    buttons = ['<button class="active" data-outcome="all">all</button>']
    buttons += [
        f'<button data-outcome="{_e(outcome)}">{_e(outcome)} ({n})</button>' for outcome, n in sorted(counts.items())
    ]
    return f"<nav>{''.join(buttons)}</nav>"


def _table(cases: Sequence[dict[str, Any]]) -> str:
    rows = []
    for index, case in enumerate(cases):
        outcome = str(case.get("outcome"))
        failure = case.get("failure") or {}
        where = failure.get("summary", "") or flaky_note(case)
        cell = f"cell {failure['cell']}" if failure.get("cell") else ""
        link = f'<a href="#case-{index}">{_e(cell or "details")}</a>' if outcome not in (*PASSED, "not run") else ""
        output = case.get("output") or ""
        name = _e(str(case.get("case")))
        seconds = float(case.get("duration") or 0)
        rows.append(
            f'<tr data-outcome="{_e(outcome)}"><td data-key="{_e(outcome)}">{_badge(outcome)}</td>'
            f"<td><code>{_e(str(case.get('notebook')))}</code></td><td>{name}</td>"
            f'<td class="num" data-key="{seconds:.3f}">{seconds:.1f} s</td>'
            f"<td>{link}</td><td>{_e(_short(where))}</td>"
            f"<td>{f'<code>{_e(str(output))}</code>' if output else ''}</td></tr>"
        )
    names = ("outcome", "notebook", "case", "duration", "failing cell", "error", "executed notebook")
    head = "<tr>" + "".join(f"<th>{name}</th>" for name in names) + "</tr>"
    return f'<table id="cases"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _section(index: int, case: dict[str, Any], rootdir: Path, embed: bool) -> str:
    failure = case.get("failure") or {}
    title = f"{case.get('notebook')}::{case.get('case')}: {case.get('outcome')}"
    parts = [f'<section class="case" id="case-{index}"><h2>{_e(title)}</h2>']
    if failure.get("summary"):
        parts.append(f"<p><strong>{_e(str(failure['summary']))}</strong></p>")
    output = str(case.get("output") or "")
    if output:
        parts.append(f"<p>executed notebook: <code>{_e(output)}</code></p>")
    snapshot = case.get("snapshot") or {}
    for change in snapshot.get("changes") or []:
        parts.append(_snapshot_change(change))
    if embed and output and not is_url(output):
        path = Path(output) if Path(output).is_absolute() else rootdir / output
        parts.append(_notebook(path, f"case-{index}"))
    elif output:
        parts.append("<p>(not rendered here: see the executed notebook)</p>")
    parts.append("</section>")
    return "".join(parts)


def _principles(notebooks: Sequence[dict[str, Any]]) -> str:
    """The principles' measures per notebook, when the session measured them (--notebooks-lint)."""
    rows = []
    for nb in notebooks:
        found = nb.get("principles") or {}
        measures = found.get("measures")
        if not measures:
            continue
        broken = "; ".join(str(v.get("message")) for v in found.get("violations", []))
        rows.append(
            f"<tr><td><code>{_e(str(nb.get('path')))}</code></td><td>{measures['branches']}</td>"
            f"<td>{len(measures['definitions'])}</td><td>{measures['code_cells']}</td><td>{measures['lines']}</td>"
            f"<td>{_badge('failed') + ' ' + _e(broken) if broken else _badge('passed')}</td></tr>"
        )
    if not rows:
        return ""
    head = "".join(
        f"<th>{h}</th>" for h in ("notebook", "branches", "definitions", "code cells", "lines", "principles")
    )
    return f'<section id="principles"><h2>Principles</h2><table><tr>{head}</tr>{"".join(rows)}</table></section>'


def _snapshot_change(change: dict[str, Any]) -> str:
    number = change.get("head_number") or change.get("base_number")
    diff = str(change.get("output_diff") or change.get("source_diff") or "")
    old = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    new = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return (
        f"<h3>snapshot: cell {_e(str(number))} ({_e(str(change.get('kind', 'changed')))})</h3>"
        f'<div class="side"><div><strong>snapshot</strong><pre>{_e(chr(10).join(old))}</pre></div>'
        f"<div><strong>this run</strong><pre>{_e(chr(10).join(new))}</pre></div></div>"
    )


def _notebook(path: Path, anchor: str) -> str:
    """The executed notebook as HTML (nbconvert's ``basic`` template: no head, no external files)."""
    try:
        import nbformat
        from nbconvert import HTMLExporter

        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        _tag_failing_cell(nb)
        body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    except OSError as exc:
        return f"<p>cannot read the executed notebook: {_e(str(exc))}</p>"
    except Exception as exc:  # noqa: BLE001 - a notebook nbconvert cannot render must not lose the report
        return f"<p>nbconvert could not render it: {_e(type(exc).__name__)}: {_e(str(exc))}</p>"
    body = body.replace('id="pytest-notebooks-failure"', f'id="{anchor}-failure"')
    body = body.replace('href="#pytest-notebooks-failure"', f'href="#{anchor}-failure"')
    return f'<div class="notebook">{body}</div>'


def _tag_failing_cell(nb: dict[str, Any]) -> None:
    """Tag the cell after the anchor that execution put before the failing cell."""
    cells = nb.get("cells", [])
    for index, cell in enumerate(cells):
        tags = cell.get("metadata", {}).get("tags", [])
        source = "".join(cell.get("source", ""))
        if ERROR_MARKER_TAG in tags and 'id="pytest-notebooks-failure"' in source and index + 1 < len(cells):
            following = cells[index + 1].setdefault("metadata", {})
            following["tags"] = [*following.get("tags", []), FAILING_TAG]
            cell["metadata"]["tags"] = [t for t in tags if t != ERROR_MARKER_TAG]  # keep the anchor visible
            return


def _diff(text: str) -> str:
    lines = []
    for line in text.splitlines():
        kind = "diff-add" if line.startswith("+") else "diff-del" if line.startswith("-") else ""
        lines.append(f'<span class="{kind}">{_e(line)}</span>' if kind else _e(line))
    return "\n".join(lines)


def _badge(outcome: str) -> str:
    kind = "good" if outcome in _GOOD else "neutral" if outcome in ("skipped", "not run") else "bad"
    return f'<span class="badge {kind}">{_e(outcome)}</span>'


def _short(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
