"""The exit codes of the console scripts (nbpromote, nbreview, nbresults), one table for all three."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Documented in each script's ``--help`` and in the README."""

    OK = 0  # done; nbpromote: a release was made (status, history: done)
    FAILED = 1  # could not be done: target, credentials, bucket, network, a lost race; also any crash
    USAGE = 2  # bad command line, configuration, or an input file that cannot be read
    NOTHING_TO_DO = 3  # nbpromote: what is live already is what would be promoted
    REFUSED = 4  # nbpromote: the evidence does not allow it: a case not passed, a changed file, git state, drift
    PARTIAL = 5  # nbpromote: promoted the notebooks that passed, held back the others
    CONFLICT = 6  # nbpromote: another promotion holds the target, or won the race; nothing was changed
    DRIFT = 7  # nbpromote status: a live template is not what the release published (changed by hand)

    PROMOTED = 0  # nbpromote's name for OK
