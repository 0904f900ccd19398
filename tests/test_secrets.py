"""Secrets from the environment: masked everywhere a case's output goes; kernels can run without them."""

from __future__ import annotations

import html
import json
import os
import signal
import time
from typing import Any

import pytest

from pytest_notebooks.redact import MASK, Redactor, clean_environ, is_credential_name
from tests.notebooks import PARAMS, write_notebook
from tests.subprocess_pytest import start_pytest

# Fake secrets, searched for in everything a run writes. PN_PRIVATE_THING is a credential only
# because the ini's notebooks_redact names it.
FAKE_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "SECRET-MARKER-aws-8f3e1c",
    "MY_TOKEN": "SECRET-MARKER-tok-5b7d2a",
    "PN_PRIVATE_THING": "SECRET-MARKER-extra-9c4f",
}


def test_credential_names_follow_the_documented_globs_in_any_case() -> None:
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GITHUB_TOKEN", "my_token", "DB_PASSWORD", "API_KEY"):
        assert is_credential_name(name), name
    for name in ("PATH", "HOME", "AWS_ACCESS_KEY_ID", "AWS_REGION", "PWD", "TOKENIZERS_PARALLELISM"):
        assert not is_credential_name(name), name
    assert is_credential_name("PN_PRIVATE_THING", ["pn_private_*"])


def test_values_are_masked_longest_first_and_short_ones_are_left_alone() -> None:
    environ = {
        "MY_TOKEN": "abcdef123",
        "OUTER_SECRET": "xx-abcdef123-yy",
        "SHORT_TOKEN": "abc12",  # under MIN_LENGTH: masking it would mask ordinary text
        "PLAIN": "not-a-secret-at-all",
        "SSH_PRIVATE_KEY": "-----BEGIN KEY-----\nline-one-of-key\n-----END KEY-----",
    }
    redactor = Redactor.from_environ(environ)
    assert redactor.names == ("MY_TOKEN", "OUTER_SECRET", "SSH_PRIVATE_KEY")
    assert redactor.text("a xx-abcdef123-yy b abcdef123 c abc12") == f"a {MASK} b {MASK} c abc12"
    assert redactor.text("printed: line-one-of-key") == f"printed: {MASK}"
    assert redactor.text("not-a-secret-at-all") == "not-a-secret-at-all"
    assert not Redactor.from_environ({"PLAIN": "x" * 20})


def test_notebook_data_is_masked_in_place_and_split_secrets_are_joined() -> None:
    redactor = Redactor.from_environ({"MY_TOKEN": "abcdef123"})
    nb: dict[str, Any] = {"cells": [{"outputs": [{"data": {"text/plain": ["x abcdef123"]}}], "source": "abcdef123"}]}
    assert redactor.data(nb) is nb
    assert nb["cells"][0] == {"outputs": [{"data": {"text/plain": [f"x {MASK}"]}}], "source": MASK}
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "one abc"},
        {"output_type": "stream", "name": "stdout", "text": "def123 two"},
        {"output_type": "stream", "name": "stderr", "text": "three"},
        {"output_type": "stream", "name": "stdout", "text": "four"},
        {"output_type": "stream", "name": "stdout", "text": "five"},
    ]
    redactor.streams(outputs)
    assert [o["text"] for o in outputs] == [f"one {MASK} two", "three", "four", "five"]  # only the split run


def test_a_clean_environment_has_no_credential_variables() -> None:
    environ = {"PATH": "/bin", "GITHUB_TOKEN": "x", "AWS_SECRET_ACCESS_KEY": "secret-value", "X_PASSWORD": "pw"}
    assert clean_environ(environ) == {"PATH": "/bin"}
    assert clean_environ({"PN_PRIVATE_A": "1", "B": "2"}, ["PN_PRIVATE_*"]) == {"B": "2"}


LEAKY: list[Any] = [
    PARAMS,
    "import os, subprocess, sys\n"
    "token = os.environ['MY_TOKEN']\n"
    "print('token', token, 'aws', os.environ['AWS_SECRET_ACCESS_KEY'], 'extra', os.environ['PN_PRIVATE_THING'])\n"
    "for char in token:\n"
    "    sys.stdout.write(char)\n"
    "    sys.stdout.flush()\n"
    "display({'text/plain': token}, raw=True)\n"
    "subprocess.run(['echo', 'from a subprocess', token], check=True)",
    "if region_code == 'fr':\n    raise ValueError(f'login failed with token {token}')",
]


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.kernel
def test_a_printed_secret_reaches_no_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    pytester.makeini(
        "[pytest]\nfilterwarnings = ignore::pytest.PytestAssertRewriteWarning\nnotebooks_redact =\n    PN_PRIVATE_*\n"
    )
    write_notebook(pytester.path / "login.ipynb", LEAKY)
    (pytester.path / "login.yaml").write_text("cases:\n  luna: {region_code: luna}\n  fr: {region_code: fr}\n")
    result = pytester.runpytest_subprocess(*workers, "--junitxml=junit.xml", "--notebooks-review=review.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "::error file=login.ipynb,*::cell 3 (In [[]4]): ValueError: login failed with token [*][*][*]",
            "FAILED login.ipynb::fr - cell 3 (In [4]): ValueError: login failed with token ***",
        ]
    )
    sinks = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    for name in ("junit.xml", "review.md"):
        sinks[name] = (pytester.path / name).read_text()
    for path in (pytester.path / "notebook-outputs").rglob("*"):
        if path.is_file():
            sinks[str(path.relative_to(pytester.path))] = path.read_text()
    assert len(sinks) >= 6  # both notebooks and results.json were written
    for name, text in sinks.items():
        assert "SECRET-MARKER" not in text, f"a secret in {name}"
    saved = sinks["notebook-outputs/login/luna.ipynb"]
    assert f"token {MASK} aws {MASK} extra {MASK}" in saved
    assert saved.count(MASK) >= 5  # the print, the joined characters, the display, the subprocess's echo


@pytest.mark.kernel
def test_a_clean_kernel_environment_has_no_credentials(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PN_PLAIN_SETTING", "still-here")
    write_notebook(
        pytester.path / "env.ipynb",
        [
            "import os\n"
            "assert 'AWS_SECRET_ACCESS_KEY' not in os.environ, 'the kernel can read the AWS secret'\n"
            "assert 'MY_TOKEN' not in os.environ\n"
            "assert os.environ['PN_PLAIN_SETTING'] == 'still-here'"
        ],
    )
    (pytester.path / "env.yaml").write_text("")
    pytester.runpytest("-p", "no:xdist", "--notebooks-kernel-env=clean").assert_outcomes(passed=1)
    result = pytester.runpytest("-p", "no:xdist")  # inherit, the default
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED env.ipynb::default - cell 1 (In [[]1]): AssertionError: the kernel can read*"])


def test_secrets_are_masked_in_the_forms_people_print_them() -> None:
    token = "ab\\cd\"ef'gh&<12"  # noqa: S105 -- a fake secret with a backslash, both quotes and HTML
    redactor = Redactor.from_environ({"MY_TOKEN": token})
    shown = {
        "as is": token,
        "repr (KeyError, print(dict), a traceback)": repr(token),
        "repr in double quotes": '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"',
        "JSON": json.dumps(token),
        "HTML (pandas' to_html)": html.escape(token, quote=False),
        "HTML attribute": html.escape(token),
        "in a dict": repr({"password": token}),
    }
    for form, text in shown.items():
        masked = redactor.text(f"before {text} after")
        assert masked.startswith("before "), form
        assert masked.endswith(" after"), form
        assert "gh" not in masked, f"{form}: {masked}"


def test_values_are_masked_never_keys() -> None:
    redactor = Redactor.from_environ({"MY_TOKEN": "outputs", "OTHER_TOKEN": "execution_count"})
    cell: dict[str, Any] = {"outputs": [{"text": "outputs of execution_count"}], "execution_count": 3}
    redactor.data(cell)
    assert cell == {"outputs": [{"text": f"{MASK} of {MASK}"}], "execution_count": 3}


def test_many_secrets_in_a_large_output_are_all_masked() -> None:
    environ = {f"SERVICE_{n}_TOKEN": f"tok{n:05d}-{n * 7919:08d}" for n in range(3000)}
    redactor = Redactor.from_environ(environ)
    chunk = "x" * 1000 + " tok01234-09772046 " + "y" * 1000 + " tok00001-00007919\n"
    masked = redactor.text(chunk * 500)  # 1 MB, 1,000 secrets
    assert masked.count(MASK) == 1000
    assert "tok0" not in masked
    # a value that is another's prefix: the longer one wins
    prefix = Redactor.from_environ({"A_TOKEN": "secret-one", "B_TOKEN": "secret-one-two"})
    assert prefix.text("x secret-one-two y secret-one z") == f"x {MASK} y {MASK} z"


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.kernel
def test_a_secret_passed_as_a_parameter_is_masked_where_parameters_are_shown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    """The fixture passes the same password the environment holds: the kernel gets it, no report shows it."""
    secret = "SECRET-MARKER-db-77aa11"  # noqa: S105 -- a fake secret
    monkeypatch.setenv("DB_PASSWORD", secret)
    write_notebook(
        pytester.path / "db.ipynb",
        [
            ("password = ''\nnested = {}\nregion_code = 'luna'", ["parameters"]),
            "import os\nassert password == os.environ['DB_PASSWORD'], 'the kernel got a masked password'\n"
            "assert nested['login'] == [password]\n"
            "print('the kernel got the real password')",
            "assert region_code == 'luna', 'wrong region'",
        ],
    )
    (pytester.path / "db.yaml").write_text(
        f"parameters:\n  password: {secret}\n  nested: {{login: ['{secret}']}}\n"
        "cases:\n  luna: {region_code: luna}\n  fr: {region_code: fr}\n"
    )
    result = pytester.runpytest_subprocess(*workers, "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "parameters: password='***', nested={'login': [[]'***'[]]}, region_code='fr'",
            "reproduce: papermill db.ipynb notebook-outputs/db/fr.repro.ipynb --cwd . -k python3 -p password '***' "
            '-y \'nested: {"login": [[]"***"[]]}\' -p region_code fr *',
            "FAILED db.ipynb::fr - cell 3 (In [[]4]): AssertionError: wrong region",
        ]
    )
    sinks = {"stdout": result.stdout.str(), "stderr": result.stderr.str(), "junit.xml": ""}
    sinks["junit.xml"] = (pytester.path / "junit.xml").read_text()
    for path in (pytester.path / "notebook-outputs").rglob("*"):
        if path.is_file():
            sinks[str(path.relative_to(pytester.path))] = path.read_text()
    assert len(sinks) >= 6  # both notebooks and results.json were written
    for name, text in sinks.items():
        assert "SECRET-MARKER" not in text, f"the password in {name}"
    saved = json.loads(sinks["notebook-outputs/db/luna.ipynb"])
    assert "the kernel got the real password" in json.dumps(saved["cells"])
    records = json.loads(sinks["notebook-outputs/results.json"])["cases"]
    assert [r["parameters"]["nested"] for r in records] == [{"login": [MASK]}] * 2


@pytest.mark.kernel
def test_a_run_killed_midway_leaves_no_secret_parameter_on_disk(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """papermill saves the notebook while cells run; a pytest killed then never masks the whole copy."""
    secret = "SECRET-MARKER-killed-5c3e"  # noqa: S105 -- a fake secret
    monkeypatch.setenv("DB_PASSWORD", secret)
    write_notebook(
        pytester.path / "db.ipynb",
        [("password = ''", ["parameters"]), "import pathlib, time\npathlib.Path('running').touch()\ntime.sleep(600)"],
    )
    (pytester.path / "db.yaml").write_text(f"parameters:\n  password: {secret}\n")
    saved = pytester.path / "notebook-outputs" / "db" / "default.ipynb"
    process = start_pytest(pytester.path, "-p", "no:xdist", "-p", "no:cacheprovider", output=False)
    try:
        deadline = time.monotonic() + 240
        while not ((pytester.path / "running").exists() and saved.exists() and "running" in saved.read_text()):
            assert time.monotonic() < deadline, "the case never started"
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    text = saved.read_text()
    assert "pathlib.Path('running')" in text  # a save made while the cell ran
    assert "SECRET-MARKER" not in text
    injected = json.loads(text)["cells"][1]
    assert injected["metadata"]["tags"] == ["injected-parameters"]
    assert 'password = "***"' in "".join(injected["source"])
