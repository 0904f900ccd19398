"""nbpromote: publish the notebook templates that passed their tests to where the scheduler reads them.

The data flow, one module per step::

    results.json + git + disk   inputs.py    -> Inputs (candidates) or Refused     gitinfo.py for git
    [tool.nbpromote], URLs      settings.py  -> Config, Target
    source bytes                stamp.py     -> published bytes (+ provenance)     pure
    wanted + current release    plan.py      -> Plan (add/change/keep/retire/...)  pure
    plan -> conditional writes  publish.py   -> Outcome; status, history           the release algorithm
    keys -> bytes               store.py     -> LocalStore, S3Store                the only boto3 module
    argv -> exit code           cli.py       -> the ``nbpromote`` console script
    records                     models.py    frozen dataclasses, JSON forms; errors.py the exception tree

Layout of a target (``s3://bucket/prefix/`` or a directory)::

    <key>.ipynb                            live templates, e.g. vid_agg.ipynb (path below the source root)
    .nbpromote/objects/<sha256>.ipynb      published bytes, content-addressed, create-only
    .nbpromote/releases/<release>.json     release manifests (schema nbpromote/release 1), create-only
    .nbpromote/current.json                the pointer (schema nbpromote/current 1), compare-and-swap

The algorithm is in ``publish.py``'s docstring; the exit codes are ``models.ExitCode``.
"""
