"""nbpromote's exceptions, one small tree; each maps to one exit code (see ``ExitCode``).

    PromoteError                  base; never raised itself
    +-- UsageError                a bad command line or [tool.nbpromote] table         -> USAGE
    +-- Refused                   the inputs do not allow it: results, git, drift     -> REFUSED
    +-- Failed                    it could not be done                                -> FAILED
        +-- TargetError           bad target URL, credentials, bucket, I/O
            +-- LockTimeout       a local store's lock stayed taken (its holder is stopped or hangs)
        +-- Conflict              another promotion holds the release pointer (its    -> CONFLICT
                                  lease is live) or moved it first; nothing changed
    +-- PreconditionFailed        a conditional write found another ETag; the store raises it and
                                  publish.py turns it into drift, a conflict or "already done"

Everything else that escapes is a bug and is shown with a normal traceback (exit code 1, FAILED).
"""

from __future__ import annotations


class PromoteError(Exception):
    """Base of every exception nbpromote raises on purpose."""


class UsageError(PromoteError):
    """The command line or the ``[tool.nbpromote]`` table is wrong; the message is one line."""


class Refused(PromoteError):
    """Promotion is not allowed; ``reasons`` are one line each, ``hint`` says what to do."""

    def __init__(self, reasons: list[str] | tuple[str, ...], hint: str = "") -> None:
        self.reasons = tuple(reasons)
        self.hint = hint
        super().__init__("; ".join(self.reasons))


class Failed(PromoteError):
    """The promotion could not be carried out; the message is one line including a hint."""


class TargetError(Failed):
    """The target cannot be used: bad URL, no credentials, no bucket, access denied, I/O error."""


class LockTimeout(TargetError):
    """A local store's lock was held by another process for longer than nbpromote waits; the message
    names that process and what to do about it."""


class Conflict(Failed):
    """Another promotion is applying a release under its lease, or won a race for the pointer (or for a
    create-only manifest). The message names that release and its owner, says what this run did
    (nothing live, as a rule) and what to do; the exit code is CONFLICT, not FAILED."""


class PreconditionFailed(PromoteError):
    """A conditional write or delete found the key in another state than expected."""

    def __init__(self, key: str, expected: str | None) -> None:
        self.key = key
        self.expected = expected
        wanted = "absent" if expected is None else f"ETag {expected}"
        super().__init__(f"{key}: expected {wanted}")
