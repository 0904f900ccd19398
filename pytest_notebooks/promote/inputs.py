"""Results file + git + the files on disk -> ``Inputs`` (what may be promoted), or ``Refused``.

The evidence is checked first, as a whole; a problem here refuses the run:

- the results file is valid against its published schema (``results/results.schema.json``),
- its last session ended (``completed``, ``stopped`` or ``worker-crashed``): an ``interrupted`` or
  ``internal-error`` session proves nothing about the cases it did not finish,
- it comes from the commit that is checked out, tested on a clean tree, and the tree is still clean.

Then each committed notebook below the source root is promoted or held back on its own. It is
promoted when every case its fixture declares *now* (the fixture is read from disk, not from the
results file) has a record that ``passed``, or that the fixture itself skips / marks xfail (a
decision recorded in git; ``accept_fixture_skips`` / ``accept_fixture_xfails``), and when its and its
fixture's sha256 are those recorded. A failed, errored, interrupted, crashed, xpassed, runtime-skipped
or not-run case holds it back, and whatever is live for it stays live. Members of a promotion group
(``groups`` in ``[tool.nbpromote]``) go live together or not at all; ``all_or_nothing`` refuses the
run when anything is held back. A committed notebook with no fixture is never tested, so it is left
out (and said so). Every refusal ends with the command that produces the missing evidence.
"""

from __future__ import annotations

import fnmatch
import hashlib
import shlex
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_notebooks.cases.naming import DEFAULT_NAMING, FixtureNaming
from pytest_notebooks.cases.textnotebook import INSTALL_HINT as TEXT_INSTALL_HINT
from pytest_notebooks.cases.textnotebook import (
    collected_text_notebook,
    converter,
    ipynb_name,
    is_text_suffix,
    to_ipynb_bytes,
)
from pytest_notebooks.errors import FixtureError, GitUnusable, Refused, ResultsError
from pytest_notebooks.files import is_url
from pytest_notebooks.gitinfo import GitState, TreeEntry, committed_tree, git_state, hidden_change, read_blobs
from pytest_notebooks.promote.models import Candidate, Hold, Inputs
from pytest_notebooks.promote.plan import held_by
from pytest_notebooks.results.read import load_results
from pytest_notebooks.results.record import CaseRecord, NotebookRecord, Outcome, ResultsDocument, SessionState

HINT = "promote what was tested: commit, run pytest on that commit, then run nbpromote on the same checkout"
COMPLETE = (SessionState.COMPLETED, SessionState.STOPPED, SessionState.WORKER_CRASHED)  # finished cases count
HOLD_HINT = "a rollback holds these bytes back: change the template, or release the hold (nbpromote release-hold PATH)"
MAX_IDS_IN_COMMAND = 12
MAX_CHANGES_SHOWN = 5  # lines of `git status` named in a refusal


@dataclass(frozen=True)
class Policy:
    """What holds a notebook back, from ``[tool.nbpromote]`` and the command line."""

    accept_fixture_skips: bool = True
    accept_fixture_xfails: bool = True
    accept_flaky: bool = False  # a case that passed only on a pytest-rerunfailures rerun
    all_or_nothing: bool = False
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> repo-relative globs
    text_templates: str = "text"  # what a Jupytext text template goes live as: "text", "ipynb" or "both"


@dataclass(frozen=True)
class HeldBack:
    """A notebook that is not promoted this time, and why."""

    source_path: str
    key: str
    reasons: tuple[str, ...]
    rerun: tuple[str, ...]  # pytest node ids (relative to the rootdir) whose run would give the evidence
    fix_first: bool  # a case failed: the notebook needs a fix before a re-run can help
    hold: bool = False  # held by a rollback: its line says what to do, no test run helps
    also: tuple[str, ...] = ()  # its other live keys (a text template published as text and .ipynb)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every live key it would have gone live at: whatever is live there stays."""
        return (self.key, *self.also)

    @classmethod
    def at(
        cls,
        source_path: str,
        keys: Sequence[str],
        reasons: tuple[str, ...],
        rerun: tuple[str, ...] = (),
        fix_first: bool = False,
        hold: bool = False,
    ) -> HeldBack:
        """``source_path`` held back at every one of its live ``keys`` (a text template published as
        text and .ipynb has two), for ``reasons``."""
        return cls(source_path, keys[0], reasons, rerun, fix_first, hold, tuple(keys[1:]))


@dataclass(frozen=True)
class Gathered:
    """What may be promoted, what is held back, and the command that gives the missing evidence."""

    inputs: Inputs
    held_back: tuple[HeldBack, ...]
    command: str  # "" when nothing is held back


def gather(
    results_path: Path,
    start: Path,
    source_root: Path | None,
    ignore: tuple[Path, ...] = (),
    project: Path | None = None,
    policy: Policy | None = None,
) -> Gathered:
    """Check the results file against git and the disk; raise Refused when nothing may go.

    ``start`` is a directory inside the repository; ``source_root`` defaults to the repository
    root. Paths in the results file are relative to its ``rootdir`` when that is a directory of
    this repository, else (results tested in another checkout) to ``project``, the directory
    pytest runs in (default: the repository root). Untracked files below ``ignore`` (a local
    target), the results file and the results' output directory do not make the tree dirty.
    """
    policy = policy or Policy()
    results = _load(results_path)
    state = _git(results, results_path, start, ignore)
    assert state.commit is not None  # _git refuses a repository without commits
    root = state.root
    source = (source_root or root).resolve()
    if not source.is_relative_to(root):
        raise Refused([f"the source root {source} is outside the repository {root}"], "set --source-root")
    rootdir = Path(results.rootdir).resolve()
    if not (rootdir.is_dir() and rootdir.is_relative_to(root)):  # tested in another checkout
        rootdir = (project or root).resolve()
    rerun = _Rerun(rootdir, start)
    _check_evidence(results, state.commit, state.changed, rerun)

    source_rel = "" if source == root else source.relative_to(root).as_posix()
    naming = FixtureNaming.of(results.fixture_suffixes)
    found = _Sorted.of(_tested(results, rootdir, root), committed_tree(root), root, source_rel, policy, rerun, naming)
    candidates, held = _groups(found.candidates, found.held, policy)
    _refuse_held(candidates, held, policy, _hint(held, rerun))
    if not candidates:
        below = f"{source_rel or '.'}/"
        raise Refused([f"no tested notebook below the source root {below} (is --source-root right?)"], HINT)
    inputs = Inputs(
        commit=state.commit,
        branch=state.branch,
        tested_at=results.created,
        source_root=source_rel,
        candidates=tuple(candidates),
        untested=frozenset(found.untested),
        notes=tuple(found.notes),
        held=frozenset(k for h in held for k in h.keys),
    )
    return Gathered(inputs, tuple(held), _hint(held, rerun))


def hold_back(gathered: Gathered, holds: tuple[Hold, ...], policy: Policy) -> Gathered:
    """``gathered`` with each candidate whose source a rollback holds (``holds``, the current release's)
    held back, with its promotion group; Refused as ``gather`` is when that leaves nothing to promote
    or the policy is all or nothing."""
    if not any(held_by(holds, c.key, c.sha256) for c in gathered.inputs.candidates):
        return gathered
    candidates, held = _held_by_rollback(list(gathered.inputs.candidates), list(gathered.held_back), holds)
    candidates, held = _groups(candidates, held, policy)
    _refuse_held(candidates, held, policy, gathered.command)
    inputs = replace(gathered.inputs, candidates=tuple(candidates), held=frozenset(k for h in held for k in h.keys))
    return replace(gathered, inputs=inputs, held_back=tuple(held))


def _refuse_held(candidates: Sequence[Candidate], held: Sequence[HeldBack], policy: Policy, hint: str) -> None:
    if held and (policy.all_or_nothing or not candidates):
        why = "all or nothing: no notebook goes live while one is held back; " if candidates else ""
        reasons = [f"{h.source_path}: {reason}" for h in held for reason in h.reasons]
        raise Refused(reasons, why + (hint or HOLD_HINT))


def _load(results_path: Path) -> ResultsDocument:
    try:
        return load_results(results_path)
    except ResultsError as exc:
        missing = not results_path.exists()
        raise Refused(
            [str(exc)], "run pytest first (the plugin writes it), or pass --results" if missing else HINT
        ) from None


def _git(results: ResultsDocument, results_path: Path, start: Path, ignore: tuple[Path, ...]) -> GitState:
    """The repository's state; the results file and its output directory do not make the tree dirty."""
    ignore = (*ignore, results_path.resolve())  # as the plugin does when it records git.dirty
    output_dir = results.output_dir
    if output_dir and not is_url(output_dir):
        ignore = (*ignore, Path(output_dir).resolve())
    try:
        state = git_state(start, ignore=ignore)
    except GitUnusable as exc:
        raise Refused([str(exc)], "") from None
    if state is None:
        raise Refused([f"{start} is not inside a git repository: nbpromote publishes committed notebooks only"], HINT)
    if state.commit is None:
        raise Refused([f"the repository at {state.root} has no commits yet"], HINT)
    return state


def _check_evidence(results: ResultsDocument, head: str, changed: Sequence[str], rerun: _Rerun) -> None:
    """The evidence as a whole: the commit, the tree, and a session that finished."""
    reasons = _git_reasons(results, head, changed)
    if reasons:
        raise Refused(reasons, HINT)
    session = results.session
    if session.state not in COMPLETE:
        unfinished = [c.nodeid for c in results.cases if not c.outcome.passing]
        raise Refused(
            [
                f"the last test session ({session.finished or session.id}) was {session.state}: "
                f"its evidence is incomplete ({len(unfinished)} cases without a pass)"
            ],
            f"run the cases again: {rerun.command(unfinished)}",
        )


@dataclass
class _Sorted:
    """Every committed template below the source root, promoted or held back, and what was left out."""

    candidates: list[Candidate] = field(default_factory=list)
    held: list[HeldBack] = field(default_factory=list)
    untested: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        tested: Mapping[str, _Tested],
        tree: Mapping[str, TreeEntry],
        root: Path,
        source_rel: str,
        policy: Policy,
        rerun: _Rerun,
        naming: FixtureNaming = DEFAULT_NAMING,
    ) -> _Sorted:
        found = cls()
        committed = {path for path, entry in tree.items() if not entry.is_link}
        text = {p for p in committed if _is_text_template(p, source_rel, committed, root, naming)}
        templates = sorted(p for p in committed if _is_template(p, source_rel) or p in text)
        _refuse_lookalikes(templates)
        blobs = _committed(root, tree, {p: r for p, r in tested.items() if p in committed}, naming)
        for path in templates:
            record = tested.get(path)
            keys = _live_keys(path, source_rel, policy.text_templates)
            if record is None:
                found.untested_template(path, keys, committed, rerun.node(root / path), naming)
                continue
            checked = _check(path, keys[0], record, blobs, policy, rerun)
            outcome = (
                checked if keys == (_key(path, source_rel),) else _forms(checked, keys, record, rerun.node(root / path))
            )
            if isinstance(outcome, HeldBack):  # held at each of its keys, whatever held it
                found.held.append(HeldBack.at(path, keys, outcome.reasons, outcome.rerun, outcome.fix_first))
            else:
                found.candidates.extend(outcome if isinstance(outcome, list) else [outcome])
        for path in sorted(p for p, entry in tree.items() if entry.is_link and _is_template(p, source_rel)):
            found.notes.append(
                f"{path}: not promoted: a symbolic link in git (a template is promoted at its real path)"
            )
        extra = []
        for path in sorted(tested):
            if not _under(path, source_rel):
                found.notes.append(f"{path}: not promoted: outside the source root {source_rel or '.'}/")
            elif path not in committed:
                extra.append(f"{path}: tested but not committed")
        if extra:
            raise Refused(extra, HINT)
        return found

    def untested_template(
        self, path: str, keys: tuple[str, ...], committed: set[str], node: str, naming: FixtureNaming
    ) -> None:
        """A committed template the results file has no case of: held back, or never tested."""
        fixtures = naming.candidates(path)
        if any(f in committed for f in fixtures):
            self.held.append(HeldBack.at(path, keys, ("not run: the results file has no case of it",), (node,)))
        else:
            self.untested.update(keys)
            fixture = PurePosixPath(fixtures[0]).name
            self.notes.append(f"{path}: not promoted: no fixture ({fixture}), so never tested")


def _refuse_lookalikes(templates: Sequence[str]) -> None:
    """Two templates whose names differ only in case or Unicode normalization are one file on macOS
    and Windows (a local target there kept one and then reported the other as drift): refused."""
    seen: dict[str, str] = {}
    pairs = []
    for path in templates:
        folded = unicodedata.normalize("NFC", path).casefold()
        if folded in seen:
            pairs.append(f"{seen[folded]} and {path} differ only in case or Unicode normalization")
        else:
            seen[folded] = path
    if pairs:
        raise Refused(pairs, "rename one of each pair (git mv): on a case-insensitive file system they are one file")


def _held_by_rollback(
    candidates: list[Candidate], held: list[HeldBack], holds: tuple[Hold, ...]
) -> tuple[list[Candidate], list[HeldBack]]:
    """A candidate whose source is the bytes a rollback took live away from is held back (a text template
    published as text and .ipynb: both, once)."""
    stopped: dict[str, Hold] = {}
    for candidate in candidates:
        hold = held_by(holds, candidate.key, candidate.sha256)
        if hold is not None:
            stopped.setdefault(candidate.source_path, hold)
    keys = _keys_by_source(candidates)
    for source_path, hold in stopped.items():
        reason = (
            f"held back: release {hold.set_in} rolled it back from these bytes (sha256 {hold.sha256[:12]}); "
            f"change the template, or release the hold: nbpromote release-hold {source_path}"
        )
        held.append(HeldBack.at(source_path, keys[source_path], (reason,), hold=True))
    return [c for c in candidates if c.source_path not in stopped], held


def _keys_by_source(candidates: Sequence[Candidate]) -> dict[str, list[str]]:
    """Each source path's live keys, in order (a text template published as text and .ipynb has two)."""
    keys: dict[str, list[str]] = {}
    for candidate in candidates:
        keys.setdefault(candidate.source_path, []).append(candidate.key)
    return keys


def _hint(held: Sequence[HeldBack], rerun: _Rerun) -> str:
    """The command that gives the missing evidence; "" when nothing held back needs any."""
    held = [h for h in held if not h.hold]
    if not held:
        return ""
    if any(h.fix_first for h in held):
        # a fix is a new commit, and only results of the commit checked out count: all of it again
        return f"fix the failing notebooks (see each failure), commit, then test that commit: {rerun.command([])}"
    command = rerun.command([n for h in held for n in h.rerun])
    return f"run the missing cases (results of the same commit accumulate): {command}"


class _Rerun:
    """Builds the pytest command that runs some cases again, as the user would type it."""

    def __init__(self, rootdir: Path, cwd: Path) -> None:
        self.rootdir = rootdir
        self.cwd = cwd.resolve()

    def node(self, notebook: Path, case: str | None = None) -> str:
        try:
            text = notebook.resolve().relative_to(self.rootdir).as_posix()
        except ValueError:
            text = notebook.as_posix()
        return f"{text}::{case}" if case else text

    def command(self, nodeids: Sequence[str]) -> str:
        ids = list(dict.fromkeys(nodeids))
        if len(ids) > MAX_IDS_IN_COMMAND:  # whole notebooks, then the whole suite
            ids = list(dict.fromkeys(n.partition("::")[0] for n in ids))
            if len(ids) > MAX_IDS_IN_COMMAND:
                ids = []
        words = ["pytest", *ids]
        text = shlex.join(words)
        if self.rootdir != self.cwd:
            text = f"cd {shlex.quote(str(self.rootdir))} && {text}"
        return text


def _groups(
    candidates: list[Candidate], held: list[HeldBack], policy: Policy
) -> tuple[list[Candidate], list[HeldBack]]:
    """A group goes live whole or not at all: one held-back member holds back every member."""
    held_paths = {h.source_path for h in held}
    rolled_back = {h.source_path for h in held if h.hold}
    for name, patterns in policy.groups.items():
        members = [c for c in candidates if any(fnmatch.fnmatchcase(c.source_path, p) for p in patterns)]
        blockers = sorted(p for p in held_paths if any(fnmatch.fnmatchcase(p, pat) for pat in patterns))
        if not blockers or not members:
            continue
        for source_path, keys in _keys_by_source(members).items():
            rolled = [b for b in blockers if b in rolled_back]
            passed = [b for b in blockers if b not in rolled_back]
            why = [f"{', '.join(passed)} did not pass"] if passed else []
            why += [f"a rollback holds {', '.join(rolled)} back"] if rolled else []
            reason = f"held back with its promotion group {name!r}: {'; '.join(why)}"
            held.append(HeldBack.at(source_path, keys, (reason,)))
            held_paths.add(source_path)
        candidates = [c for c in candidates if c not in members]
    return candidates, held


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_reasons(results: ResultsDocument, head: str, changed_now: Sequence[str]) -> list[str]:
    reasons = []
    git = results.git
    if git is None or not git.commit:
        reasons.append("the results file was not written in a git repository with a commit (its 'git' is empty)")
    else:
        if git.commit != head:
            reasons.append(f"the results file is from commit {git.commit[:12]}, but {head[:12]} is checked out")
        if git.dirty:
            reasons.append("the tests ran on a working tree with uncommitted changes (results: git.dirty = true)")
    if changed_now:
        shown = ", ".join(repr(line) for line in changed_now[:MAX_CHANGES_SHOWN])
        more = f" and {len(changed_now) - MAX_CHANGES_SHOWN} more" if len(changed_now) > MAX_CHANGES_SHOWN else ""
        reasons.append(
            f"the working tree has uncommitted changes now (`git status --short`: {shown}{more}); commit them, "
            "or list what your notebooks write in .gitignore"
        )
    return reasons


@dataclass(frozen=True)
class _Tested:
    """A notebook of the results file, its case records, and where its fixture is."""

    notebook: NotebookRecord
    cases: tuple[CaseRecord, ...]
    fixture_path: Path  # resolved: a link out of the repository shows here


def _tested(results: ResultsDocument, rootdir: Path, root: Path) -> dict[str, _Tested]:
    """Results per notebook, keyed by path relative to the repository root."""
    cases: dict[str, list[CaseRecord]] = {}
    for case in results.cases:
        cases.setdefault(case.notebook, []).append(case)
    tested: dict[str, _Tested] = {}
    for notebook in results.notebooks:
        absolute = (rootdir / notebook.path).resolve()
        try:
            path = absolute.relative_to(root).as_posix()
        except ValueError:
            path = absolute.as_posix()
        fixture_path = (rootdir / notebook.fixture).resolve()
        tested[path] = _Tested(notebook, tuple(cases.get(notebook.path, ())), fixture_path)
    return tested


def _declared(notebook: Path, fixture: Path, label: str) -> list[Any]:
    """The cases the fixture declares now, read as the plugin reads them."""
    from pytest_notebooks.cases.notebook import read_notebook
    from pytest_notebooks.cases.params import load_cases

    return load_cases(fixture, read_notebook(notebook, label), label)


@dataclass(frozen=True)
class _Committed:
    """HEAD's tree and the bytes of the blobs promotion reads: what "as committed" means."""

    root: Path
    tree: Mapping[str, TreeEntry]
    blobs: Mapping[str, bytes]
    naming: FixtureNaming = DEFAULT_NAMING

    def bytes_of(self, path: str) -> bytes | None:
        entry = self.tree.get(path)
        return None if entry is None else self.blobs.get(entry.blob)


def _committed(
    root: Path, tree: Mapping[str, TreeEntry], tested: Mapping[str, _Tested], naming: FixtureNaming
) -> _Committed:
    """Read every blob a tested template and its fixture have in HEAD, in one pass."""
    wanted = []
    for path, record in tested.items():
        for name in (path, _relative(record.fixture_path, root)):
            entry = tree.get(name or "")
            if entry is not None and not entry.is_link:
                wanted.append(entry.blob)
    return _Committed(root, tree, read_blobs(root, wanted) if wanted else {}, naming)


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def _same_bytes(name: str, recorded: str | None, committed: _Committed) -> str | None:
    """Why the bytes tested (recorded), the committed blob and the working copy of ``name`` are not one.

    None when all three are the same bytes. The committed blob is what gets published, so a working
    copy that git status calls clean but that is not the blob (a clean filter, skip-worktree,
    assume-unchanged) is refused with its cause, whichever of the two was tested.
    """
    data = committed.bytes_of(name)
    in_git = None if data is None else sha256_hex(data)
    try:
        on_disk: str | None = sha256_hex((committed.root / name).read_bytes())
    except OSError:
        on_disk = None
    if in_git == recorded == on_disk:
        return None
    cause = hidden_change(committed.root, name) if in_git is not None else ""
    why = f" ({cause})" if cause else ""
    if recorded == on_disk:
        return f"the bytes tested (the working copy) are not the committed file{why}"
    if recorded == in_git:
        return f"its working copy is not the committed file that was tested{why}"
    return ""


def _file_problems(path: str, record: _Tested, committed: _Committed) -> list[str]:
    """The notebook's and its fixture's bytes against the results file and git, as reasons."""
    problems = []
    tested = record.notebook
    notebook = _same_bytes(path, tested.sha256, committed)
    if notebook is not None:
        problems.append((notebook or _changed(path, tested.sha256, committed.root)) + _blobs(path, tested, committed))
    sibling = next((f for f in committed.naming.candidates(path) if f in committed.tree), tested.fixture)
    fixture = _relative(record.fixture_path, committed.root)
    if fixture is None:
        problems.append(
            f"its fixture {sibling} is a link to {record.fixture_path}, outside the repository: what it "
            "decides (its cases, skip, xfail) is not in git"
        )
        return problems
    if fixture not in committed.tree:
        problems.append(f"its fixture {sibling} changed since it was tested (or is gone)")
        return problems
    found = _same_bytes(fixture, tested.fixture_sha256, committed)
    if found is not None:
        problems.append(
            f"its fixture {sibling}: {found}" if found else f"its fixture {sibling} changed since it was tested"
        )
    return problems


def _blobs(path: str, record: NotebookRecord, committed: _Committed) -> str:
    """Both blob ids, when the results file has the tested one: `git cat-file -p <id>` shows each."""
    entry, tested = committed.tree.get(path), record.blob
    if entry is None or not tested or tested == entry.blob:
        return ""
    return f" [blob {tested[:12]} tested, {entry.blob[:12]} in HEAD]"


def _changed(path: str, recorded: str | None, root: Path) -> str:
    try:
        digest = sha256_hex((root / path).read_bytes())[:12]
    except OSError as exc:
        return f"cannot read it: {exc}"
    return f"changed since it was tested (sha256 {digest} on disk, {(recorded or '-')[:12]} in the results file)"


def _check(
    path: str,
    key: str,
    record: _Tested,
    committed: _Committed,
    policy: Policy,
    rerun: _Rerun,
) -> Candidate | HeldBack:
    notebook_path = committed.root / path
    problems = _file_problems(path, record, committed)
    if problems:
        fix_first = any(not p.startswith("changed since") for p in problems)
        return HeldBack(path, key, tuple(problems), (rerun.node(notebook_path),), fix_first)
    try:
        declared = _declared(notebook_path, record.fixture_path, record.notebook.fixture)
    except (FixtureError, OSError) as exc:
        return HeldBack(path, key, (f"its fixture cannot be read: {exc}".splitlines()[0],), (), True)
    verdict = _Verdict()
    verdict.principles(record.notebook, rerun.node(notebook_path))
    records = {c.case: c for c in record.cases}
    for case in declared:
        verdict.case(case, records.get(case.case_id), policy, rerun.node(notebook_path, case.case_id))
    if not verdict.problems and not verdict.passed:
        verdict.problems.append(
            "no case passed (every case was skipped or xfailed by its fixture): a template needs at least one "
            "passing case, so add a case that runs"
        )
        verdict.fix_first = True
    if verdict.problems:
        return HeldBack(path, key, tuple(verdict.problems), tuple(verdict.nodeids), verdict.fix_first)
    data = committed.bytes_of(path) or b""
    return Candidate(
        key=key,
        source_path=path,
        sha256=sha256_hex(data),
        size=len(data),
        cases=tuple(case.case_id for case in declared),
        fixture=record.notebook.fixture,
        fixture_sha256=record.notebook.fixture_sha256 or "",
        data=data,
    )


@dataclass
class _Verdict:
    """What the case records say about one notebook: the problems, the cases to run again, any pass."""

    problems: list[str] = field(default_factory=list)
    nodeids: list[str] = field(default_factory=list)
    fix_first: bool = False
    passed: int = 0

    def principles(self, record: NotebookRecord, node: str) -> None:
        for violation in record.principles.violations if record.principles else ():
            where = f"cell {violation.cell}: " if violation.cell else ""
            self.problems.append(
                f"breaks a principle: {where}{violation.message} (the fixture's `principles:` can raise the limit)"
            )
            self.nodeids.append(f"{node}::principles")
            self.fix_first = True

    def case(self, case: Any, found: CaseRecord | None, policy: Policy, node: str) -> None:
        outcome = found.outcome if found else Outcome.NOT_RUN
        if found is not None and outcome.passing and found.flaky and not policy.accept_flaky:
            tries = len(found.attempts)
            self.problems.append(
                f"case {case.case_id!r} is flaky: it passed only when run again (attempt {tries} of {tries}); "
                "fix what makes it fail, or set accept_flaky = true"
            )
            self.nodeids.append(found.nodeid)
            self.fix_first = True
            return
        if outcome.passing:
            self.passed += 1
            return
        if outcome is Outcome.SKIPPED and case.skip and policy.accept_fixture_skips:
            return
        if outcome is Outcome.XFAILED and case.xfail and policy.accept_fixture_xfails:
            return
        self.problems.append(f"case {case.case_id!r} {outcome}{_why(outcome, case, found)}")
        self.nodeids.append(found.nodeid if found else node)
        self.fix_first = self.fix_first or outcome in (Outcome.FAILED, Outcome.ERROR, Outcome.XPASSED)


def _why(outcome: Outcome, case: Any, found: CaseRecord | None) -> str:
    """The rest of a held-back case's line: its failure, or why its skip or xfail does not count."""
    if outcome is Outcome.SKIPPED:
        if case.skip:
            return f" by its fixture ({case.skip}) and accept_fixture_skips is false"
        return " at run time (a fixture's skip: would be a decision recorded in git)"
    if outcome is Outcome.XFAILED:
        return " (accept_fixture_xfails is false)" if case.xfail else " (its fixture does not mark it xfail)"
    failure = found.failure if found else None
    return f": {failure.summary}" if failure is not None and failure.summary else ""


def _under(path: str, source_rel: str) -> bool:
    return not source_rel or path.startswith(source_rel + "/")


def _is_template(path: str, source_rel: str) -> bool:
    """A committed notebook below the source root, outside hidden and tool-owned directories.

    Hidden: .ipynb_checkpoints, .nbpromote. Tool-owned: __snapshots__, __pycache__ and the like.
    """
    if not path.endswith(".ipynb") or not _under(path, source_rel):
        return False
    directories = PurePosixPath(_key(path, source_rel)).parts[:-1]
    return not any(part.startswith((".", "__")) for part in directories)


def _is_text_template(path: str, source_rel: str, committed: set[str], root: Path, naming: FixtureNaming) -> bool:
    """A committed Jupytext text notebook (x.py, x.md) below the source root with its fixture committed
    beside it, as the plugin collects it (cases/textnotebook.py: no x.ipynb beside it, and the file reads
    as a notebook; its bytes are checked against the committed blob and the results file later)."""
    if not is_text_suffix(path) or not _under(path, source_rel):
        return False
    directories = PurePosixPath(_key(path, source_rel)).parts[:-1]
    if any(part.startswith((".", "__")) for part in directories):
        return False
    prefix = f"{root.as_posix()}/"
    absolute = prefix + path

    def kind(name: str) -> str:
        return "file" if name.removeprefix(prefix) in committed else ""

    return collected_text_notebook(absolute, naming.candidates(absolute), kind)


def _key(path: str, source_rel: str) -> str:
    return path[len(source_rel) + 1 :] if source_rel else path


def _live_keys(path: str, source_rel: str, text_templates: str) -> tuple[str, ...]:
    """Where a committed template goes live: its path below the source root; a Jupytext text
    template's as ``text_templates`` says: the text (``x.py``), its notebook (``x.ipynb``) or both."""
    key = _key(path, source_rel)
    if not is_text_suffix(path) or text_templates == "text":
        return (key,)
    notebook = ipynb_name(key)
    return (notebook,) if text_templates == "ipynb" else (key, notebook)


def _forms(
    candidate: Candidate | HeldBack, keys: tuple[str, ...], record: _Tested, node: str
) -> list[Candidate] | HeldBack:
    """A text template's candidate at each of its live ``keys``: the committed text as it is, or the
    notebook its cases ran, made again from the committed text (held back when it is not those bytes)."""
    if isinstance(candidate, HeldBack):
        return candidate
    forms = []
    for key in keys:
        if is_text_suffix(key):
            forms.append(replace(candidate, key=key))
            continue
        made = _converted(candidate, record)
        if isinstance(made, str):
            return HeldBack.at(candidate.source_path, keys, (made,), (node,))
        forms.append(replace(made, key=key))
    return forms


def _converted(candidate: Candidate, record: _Tested) -> Candidate | str:
    """``candidate`` (a text template) as the .ipynb its passing cases ran, or why it cannot be:
    Jupytext is missing here, the results file does not say what ran, or this Jupytext makes other bytes."""
    path = candidate.source_path
    try:
        data, made_by = to_ipynb_bytes(candidate.data, path, path), converter()
    except FixtureError as exc:
        return f"its .ipynb cannot be made here: {str(exc).splitlines()[0]} ({TEXT_INSTALL_HINT})"
    digest = sha256_hex(data)
    ran = {(c.converted_sha256, c.converted_by) for c in record.cases if c.outcome.passing}
    if any(sha is None for sha, _ in ran):
        return (
            "the results file does not say which .ipynb its cases ran (it was written by an older pytest-notebooks, "
            "or by hand): run its cases again to publish it as .ipynb"
        )
    if {sha for sha, _ in ran} != {digest}:
        tested = ", ".join(sorted(f"sha256 {sha[:12]} made by {by}" for sha, by in ran if sha))
        return (
            f"the .ipynb {made_by} makes of it here (sha256 {digest[:12]}) is not the notebook its cases ran "
            f"({tested}): run nbpromote with the Jupytext the tests ran with, or run the tests again with this one"
        )
    return replace(candidate, data=data, converted_sha256=digest, converted_by=made_by)
