"""nbpromote: publish the notebook templates that passed their tests to where the scheduler reads them.

One module per step: settings.py, inputs.py (evidence -> candidates or Refused), plan.py and stamp.py
(pure), publish.py (the release algorithm), store.py (the only boto3 module), cli.py; models.py holds
the records, errors.py the exception tree. A target (``s3://bucket/prefix/`` or a directory)::

    <key>.ipynb                            live templates (path below the source root); a Jupytext
    <key>.py, <key>.md                     text template as committed, its .ipynb, or both (text_templates)
    .nbpromote/objects/<sha256>.ipynb      published bytes, content-addressed, create-only (.py, .md: text)
    .nbpromote/releases/<release>.json     release manifests (schema nbpromote/release 1), create-only
    .nbpromote/current.json                the pointer (schema nbpromote/current 1), compare-and-swap
"""
