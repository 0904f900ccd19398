"""Results files of several shards of one run -> one results file (``nbresults merge``)."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_notebooks.errors import MergeError
from pytest_notebooks.results.record import CaseRecord, NotebookRecord, ResultsDocument, SessionRecord, SessionState
from pytest_notebooks.results.recorder import build_document


def merge_documents(documents: Sequence[ResultsDocument]) -> ResultsDocument:
    """One results document from the (validated) results files of several shards of one run.

    They must share git commit and dirty state and agree on every notebook's hashes. A case is one
    record, by notebook and case id: a real record beats ``not run``, and of two real ones (a case
    run in two shards) the worse outcome wins. The merged session state is the worst of theirs.
    Notebook entries (declared case ids, principles) come from the files.
    """
    if not documents:
        raise MergeError("no results files to merge")
    first = documents[0]
    for doc in documents[1:]:
        if doc.fixture_suffixes != first.fixture_suffixes:
            raise MergeError("the shards named fixtures differently (notebooks_fixture_suffixes): run them alike")
        if doc.git != first.git:
            raise MergeError(f"results from different commits or trees: {_git(first)} and {_git(doc)}")
    notebooks: dict[str, NotebookRecord] = {}
    cases: dict[tuple[str, str], CaseRecord] = {}
    for doc in documents:
        for nb in doc.notebooks:
            seen = notebooks.setdefault(nb.path, nb)
            if (seen.sha256, seen.fixture_sha256) != (nb.sha256, nb.fixture_sha256):
                raise MergeError(f"{nb.path} was tested with different contents in different shards")
            if seen.principles is None and nb.principles is not None:
                notebooks[nb.path] = NotebookRecord(**{**vars(seen), "principles": nb.principles})
        for case in doc.cases:
            held = cases.get(case.key)
            if held is None or case.outcome.rank < held.outcome.rank:
                cases[case.key] = case
    sessions = [doc.session for doc in documents]
    session = SessionRecord(
        id="+".join(s.id for s in sessions),
        state=min((s.state for s in sessions), key=list(SessionState).index),
        crashed_workers=tuple(sorted({w for s in sessions for w in s.crashed_workers})),
    )
    return build_document(
        rootdir=first.rootdir,
        output_dir=first.output_dir,
        git=first.git,
        session=session,
        sessions=[s for doc in documents for s in doc.sessions],
        cases=cases.values(),
        notebooks=notebooks,
        principles={path: nb.principles for path, nb in notebooks.items() if nb.principles is not None},
        merged_from=len(documents),
        fixture_suffixes=first.fixture_suffixes,
    )


def _git(document: ResultsDocument) -> str:
    git = document.git
    return "no git" if git is None else f"{git.commit} ({'dirty' if git.dirty else 'clean'})"
