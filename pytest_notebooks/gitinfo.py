"""The git state of a directory. The only module that imports gitpython."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_notebooks.errors import GitOutputError, GitUnusable, RevisionError


@dataclass(frozen=True)
class GitState:
    """The commit checked out in a working tree and whether the tree differs from it."""

    commit: str | None  # None in a repository with no commits yet
    branch: str | None  # None on a detached HEAD
    root: Path
    changed: tuple[str, ...] = ()  # what makes the tree dirty: `git status` lines ("?? out.csv", " M a.ipynb")

    @property
    def dirty(self) -> bool:
        return bool(self.changed)


def git_state(path: Path, ignore: tuple[Path, ...] = ()) -> GitState | None:
    """The state of the repository containing ``path``; None outside git or without git.

    Untracked files below ``ignore`` (the plugin's own output directory) do not make it dirty.
    Raises GitUnusable, with git's own hint, when git refuses the repository.
    """
    try:
        import git
    except ImportError:  # gitpython raises ImportError when no git executable is found
        return None
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    with repo:
        root = Path(repo.working_tree_dir or path).resolve()
        try:
            status = repo.git.status("--porcelain", "-z", "--untracked-files=all")
        except git.GitCommandError as exc:
            raise GitUnusable(_refusal(root, exc)) from None
        try:
            commit: str | None = repo.head.commit.hexsha
        except ValueError:  # no commits yet
            commit = None
        branch = None if repo.head.is_detached else repo.active_branch.name
        ignored = tuple(os.path.realpath(i) for i in ignore)
        changed = tuple(
            line for line in _status(status) if not (line.startswith("??") and _below(root, line[3:], ignored))
        )
        return GitState(commit=commit, branch=branch, root=root, changed=changed)


def _below(root: Path, name: str, directories: tuple[str, ...]) -> bool:
    """Whether ``root/name`` is (below) one of ``directories``; realpath, since a link may loop."""
    real = os.path.realpath(root / name)
    return any(real == d or real.startswith(d.rstrip(os.sep) + os.sep) for d in directories)


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:
        return None


def _refusal(root: Path, exc: Any) -> str:
    """git's refusal as one screen: what it said, and its safe.directory hint when that is the cause."""
    said = " ".join(str(exc.stderr or exc).split())
    if _owner(root) not in (None, os.geteuid()):
        return (
            f"git refuses to work in {root}: the repository belongs to another user (git's safe.directory "
            f"check, common in CI containers). Hint: git config --global --add safe.directory {root}"
        )
    return f"git failed in {root}: {said[:300]}"


def _status(porcelain: str) -> list[str]:
    """``git status --porcelain -z`` as lines ``XY path`` (a rename's source path dropped)."""
    lines, records = [], iter(porcelain.split("\0"))
    for record in records:
        if len(record) < 4:
            continue
        lines.append(record)
        if {"R", "C"} & set(record[:2]):  # in the index (X) or the work tree (Y)
            next(records, None)  # the path it was renamed or copied from
    return lines


def committed_files(root: Path, under: Path | None = None) -> tuple[str, ...]:
    """Paths (POSIX, relative to ``root``) of the files in HEAD's tree, optionally only below ``under``.

    ``root`` is a repository's working tree root (``GitState.root``). Empty without commits.
    """
    import git

    with git.Repo(root) as repo:
        try:
            repo.head.commit  # noqa: B018 -- raises ValueError when there are no commits yet
        except ValueError:
            return ()
        args = ["-r", "-z", "--name-only", "--full-tree", "HEAD"]
        if under is not None and under.resolve() != root.resolve():
            args += ["--", under.resolve().relative_to(root.resolve()).as_posix()]
        listing: str = repo.git.ls_tree(*args)
    return tuple(sorted(name for name in listing.split("\0") if name))


LINK_MODE = "120000"  # a symbolic link in a git tree: its blob is the link's target, not a file's bytes


@dataclass(frozen=True)
class TreeEntry:
    """A file in HEAD's tree: its mode and its blob id."""

    mode: str  # "100644", "100755", "120000" (a symbolic link), "160000" (a submodule)
    blob: str

    @property
    def is_link(self) -> bool:
        return self.mode == LINK_MODE


def committed_tree(root: Path) -> dict[str, TreeEntry]:
    """HEAD's tree: path (POSIX, relative to ``root``) -> mode and blob id. Empty without commits."""
    import git

    with git.Repo(root) as repo:
        try:
            repo.head.commit  # noqa: B018 -- raises ValueError when there are no commits yet
        except ValueError:
            return {}
        listing: bytes = repo.git.ls_tree(
            "-r", "-z", "--full-tree", "HEAD", stdout_as_string=False, strip_newline_in_stdout=False
        )
    tree = {}
    for record in listing.split(b"\0"):
        if record:
            header, _, name = record.partition(b"\t")
            mode, _kind, blob = header.decode("ascii").split(" ")
            tree[_path(name)] = TreeEntry(mode, blob)
    return tree


def read_blobs(root: Path, blobs: list[str]) -> dict[str, bytes]:
    """The bytes of each blob id, as git stores them (what ``git cat-file blob`` prints)."""
    import git

    with git.Repo(root) as repo:
        return {blob: repo.odb.stream(bytes.fromhex(blob)).read() for blob in dict.fromkeys(blobs)}


def blob_id(data: bytes, like: str = "") -> str:
    """The id git gives a blob of ``data`` (``git hash-object``): SHA-1, or SHA-256 when ``like`` is
    an id of that length (a repository in the SHA-256 object format)."""
    digest = hashlib.sha256 if len(like) == 64 else hashlib.sha1
    return digest(b"blob %d\0" % len(data) + data).hexdigest()


def hidden_change(root: Path, path: str) -> str:
    """Why ``git status`` can be clean while the working copy of ``path`` is not HEAD's bytes.

    An index bit (skip-worktree, assume-unchanged) or an attribute that rewrites the file on its way
    into git (a clean filter, such as nbstripout's; an end-of-line conversion). "" when none applies.
    """
    import git

    with git.Repo(root) as repo:
        tags = repo.git.ls_files("-v", "-z", "--", path).split("\0")
        attributes = repo.git.check_attr("-z", "filter", "eol", "text", "ident", "--", path).split("\0")
    tag = tags[0][:1] if tags and tags[0] else ""
    if tag == "S":
        return (
            f"skip-worktree is set on it, so git status does not compare it; git update-index --no-skip-worktree {path}"
        )
    if tag.islower():
        return (
            f"assume-unchanged is set on it, so git status does not compare it; "
            f"git update-index --no-assume-unchanged {path}"
        )
    values = dict(zip(attributes[1::3], attributes[2::3], strict=False))
    if values.get("filter") not in (None, "unspecified", "unset"):
        return (
            f"git's clean filter {values['filter']!r} (.gitattributes) rewrites it on its way into git, so git "
            "status is clean while the bytes differ; run that filter on the file (nbstripout: `nbstripout "
            f"{path}`), or check out the committed bytes, then test again"
        )
    if any(values.get(name) not in (None, "unspecified", "unset") for name in ("eol", "text", "ident")):
        return "a .gitattributes conversion (eol, text or ident) rewrites it on its way into git"
    return ""


@dataclass(frozen=True)
class ChangedFile:
    """A file that differs between two commits, with its bytes on each side."""

    status: str  # "added", "removed", "modified", "renamed"
    old_path: str | None
    new_path: str | None
    old_bytes: bytes | None
    new_bytes: bytes | None

    @property
    def path(self) -> str:
        """The path on the head side, or the base side for a removed file."""
        return self.new_path or self.old_path or ""


def _repository(path: Path) -> Any:
    """The repository holding ``path``; RevisionError outside one."""
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RevisionError(f"{path} is not inside a git repository") from None


def _commit(repo: Any, rev: str) -> Any:
    """The commit ``rev`` names; RevisionError (with the CI hint) when the repository lacks it."""
    import git

    try:
        return repo.commit(rev)
    except (git.BadName, ValueError, git.GitCommandError):
        raise RevisionError(
            f"unknown revision {rev!r}; fetch it first (in GitHub Actions: actions/checkout with fetch-depth: 0)"
        ) from None


# git diff --raw status letters (git-diff(1), "Raw output format"). C (a copy) only appears with
# diff.renames=copies in the user's config: the new file is shown as added.
_STATUS = {"A": "added", "C": "added", "D": "removed", "M": "modified", "R": "renamed", "T": "modified"}
_NO_BLOB = "0" * 40
_GITLINK = "160000"  # a submodule: the "blob" is a commit of another repository


@dataclass(frozen=True)
class RawChange:
    """One record of ``git diff --raw -z``: modes, blob ids, status letter and the path(s)."""

    old_mode: str
    new_mode: str
    old_sha: str
    new_sha: str
    status: str  # one letter: A C D M R T (U and X are refused by parse_raw_diff)
    old_path: str
    new_path: str  # the same as old_path unless renamed or copied


def parse_raw_diff(output: bytes) -> list[RawChange]:
    """Split ``git diff --raw -z --no-abbrev`` output into records.

    With ``-z`` every field ends in NUL and paths are not quoted, so any byte but NUL may sit in a
    path (newlines and colons included): the output is split on NUL and read field by field, never
    line by line. Raises GitOutputError on anything that is not a whole record, so a caller never
    shows a partial list as if it were complete.
    """
    fields = output.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()  # the terminator after the last path
    changes: list[RawChange] = []
    index = 0
    while index < len(fields):
        header = fields[index].decode("ascii", "replace")
        parts = header[1:].split(" ") if header.startswith(":") else []
        if len(parts) != 5 or len(parts[4]) < 1 or parts[4][0] not in _STATUS:
            raise GitOutputError(f"unexpected record in git diff --raw output: {header[:80]!r}")
        old_mode, new_mode, old_sha, new_sha, status = parts
        paths = 2 if status[0] in "RC" else 1
        if index + paths >= len(fields):
            raise GitOutputError(f"git diff --raw output ends inside the record {header[:80]!r}")
        names = [_path(name) for name in fields[index + 1 : index + 1 + paths]]
        changes.append(RawChange(old_mode, new_mode, old_sha, new_sha, status[0], names[0], names[-1]))
        index += 1 + paths
    return changes


def _path(raw: bytes) -> str:
    """A path as git stores it (bytes) as text; bytes that are not UTF-8 become U+FFFD."""
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True)
class Comparison:
    """What a pull request changed: files from the merge base of base and head to head."""

    start: str  # the merge base's commit id (base itself when there is none)
    head: str  # head's commit id
    files: tuple[ChangedFile, ...]  # sorted by path
    start_paths: frozenset[str]  # every file in the merge base's tree
    head_paths: frozenset[str]  # every file in head's tree


def compare(path: Path, base: str, head: str = "HEAD", suffix: str | tuple[str, ...] = ".ipynb") -> Comparison:
    """The files ending in ``suffix`` that changed from the merge base of ``base`` and ``head`` to ``head``.

    Like a pull request's diff (``git diff base...head``), with renames detected at 90% similarity.
    Reads ``git diff --raw -z`` itself rather than GitPython's Diff parser, which reads that output
    line by line in a helper thread: a path with a newline was dropped, and one with a newline
    followed by a colon killed the thread and lost every later change (while the caller carried on).
    Raises RevisionError for an unknown revision or outside a repository, and
    GitOutputError when git fails or prints something unexpected.
    """
    import git

    with _repository(path) as repo:
        commits = [_commit(repo, base), _commit(repo, head)]
        bases = repo.merge_base(commits[0], commits[1])
        start = bases[0] if bases else commits[0]
        try:
            # Small notebooks share most of their JSON boilerplate, so git's default 50% similarity
            # pairs unrelated files as renames; 90% keeps real renames (with small edits) only.
            raw = repo.git.diff(
                "--raw",
                "-z",
                "-M90%",
                "--no-abbrev",
                "--no-color",
                "--no-ext-diff",
                start.hexsha,
                commits[1].hexsha,
                "--",
                stdout_as_string=False,
                strip_newline_in_stdout=False,
            )
            found = [
                _changed_file(repo, change)
                for change in parse_raw_diff(raw)
                if change.old_path.endswith(suffix) or change.new_path.endswith(suffix)
            ]
            trees = [_tree_paths(repo, commit.hexsha) for commit in (start, commits[1])]
        except git.GitCommandError as exc:
            raise GitOutputError(f"git failed: {str(exc.stderr or exc).strip()[:300]}") from None
        return Comparison(
            start=start.hexsha,
            head=commits[1].hexsha,
            files=tuple(sorted(found, key=lambda change: change.path)),
            start_paths=trees[0],
            head_paths=trees[1],
        )


def changed_files(
    path: Path, base: str, head: str = "HEAD", suffix: str | tuple[str, ...] = ".ipynb"
) -> list[ChangedFile]:
    """Files ending in ``suffix`` that changed from the merge base of ``base`` and ``head`` to ``head``.

    ``compare(...).files``; see there.
    """
    return list(compare(path, base, head, suffix).files)


def _changed_file(repo: Any, change: RawChange) -> ChangedFile:
    status = _STATUS[change.status]
    return ChangedFile(
        status=status,
        old_path=None if status == "added" else change.old_path,
        new_path=None if status == "removed" else change.new_path,
        old_bytes=None if status == "added" else _blob(repo, change.old_sha, change.old_mode),
        new_bytes=None if status == "removed" else _blob(repo, change.new_sha, change.new_mode),
    )


def _blob(repo: Any, sha: str, mode: str) -> bytes | None:
    if sha == _NO_BLOB or mode == _GITLINK:
        return None
    data: bytes = repo.odb.stream(bytes.fromhex(sha)).read()
    return data


def _tree_paths(repo: Any, commit: str) -> frozenset[str]:
    listing: bytes = repo.git.ls_tree(
        "-r", "-z", "--name-only", "--full-tree", commit, stdout_as_string=False, strip_newline_in_stdout=False
    )
    return frozenset(_path(name) for name in listing.split(b"\0") if name)


def changed_since(path: Path, rev: str) -> tuple[Path, set[Path]]:
    """(repository root, absolute paths of files that differ from ``rev`` in the working tree).

    Committed, staged and unstaged changes count, and so do untracked files that git does not
    ignore; a deleted file is listed too (it no longer exists). Raises RevisionError for an
    unknown revision or outside a repository.
    """
    with _repository(path) as repo:
        root = Path(repo.working_tree_dir or path).resolve()
        _commit(repo, rev)
        names = repo.git.diff("--name-only", "--no-renames", "-z", rev).split("\0")
        names += repo.untracked_files
        return root, {root / name for name in names if name}


def listed_files(root: Path, *patterns: str) -> list[str]:
    """The repository's files matching ``patterns`` (git pathspecs such as ``*.py``), tracked, or
    untracked and not ignored, relative to ``root``."""
    import git

    with git.Repo(root) as repo:
        listing: str = repo.git.ls_files("-z", "--cached", "--others", "--exclude-standard", "--", *patterns)
    return sorted({name for name in listing.split("\0") if name})
