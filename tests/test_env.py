"""A fixture's `env:` (file and case level): the case's kernel gets those variables, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_notebooks.cases.cache import case_from_json, case_to_json
from pytest_notebooks.collect import NotebookItem
from pytest_notebooks.models import NotebookCase
from pytest_notebooks.redact import MASK
from pytest_notebooks.run.kernels import KernelKey
from tests.notebooks import PARAMS, write_notebook

# Every case checks, in its kernel, the variables its fixture gives it.
CHECKS = [
    PARAMS,
    "import os\n"
    "print('region', os.environ.get('APP_REGION'), 'mode', os.environ.get('APP_MODE'))\n"
    "assert os.environ.get('APP_MODE') == 'batch', os.environ.get('APP_MODE')\n"
    "assert os.environ.get('APP_REGION') == region_code, os.environ.get('APP_REGION')",
]

THREE_REGIONS = """\
env:
  APP_MODE: batch
  APP_REGION: nowhere
cases:
  luna:
    parameters: {region_code: luna}
    env: {APP_REGION: luna}
  fr:
    parameters: {region_code: fr}
    env: {APP_REGION: fr}
  nowhere:
    parameters: {region_code: nowhere}
"""


def write(pytester: pytest.Pytester, fixture: str, cells: list[object] | None = None) -> Path:
    notebook = write_notebook(pytester.path / "jobs" / "env_job.ipynb", cells or CHECKS)  # type: ignore[arg-type]
    notebook.with_suffix(".yaml").write_text(fixture)
    return notebook


def test_the_case_env_is_merged_over_the_file_env_per_variable(pytester: pytest.Pytester) -> None:
    write(pytester, THREE_REGIONS)
    items, _ = pytester.inline_genitems("-q")
    envs = {item.name: item.case.env for item in items if isinstance(item, NotebookItem)}
    assert envs == {
        "luna": (("APP_MODE", "batch"), ("APP_REGION", "luna")),
        "fr": (("APP_MODE", "batch"), ("APP_REGION", "fr")),
        "nowhere": (("APP_MODE", "batch"), ("APP_REGION", "nowhere")),
    }


def test_a_fixture_without_env_gives_none() -> None:
    case = NotebookCase(Path("a.ipynb"), Path("a.yaml"), "a", {})
    assert case.env == ()


def test_the_collection_cache_carries_env() -> None:
    case = NotebookCase(Path("a.ipynb"), Path("a.yaml"), "a", {}, env=(("A", "1"), ("B_TOKEN", "x")))
    data = json.loads(json.dumps(case_to_json(case)))
    assert data["env"] == [["A", "1"], ["B_TOKEN", "x"]]
    assert case_from_json(data, case.notebook, case.fixture, "", "") == case
    with pytest.raises(TypeError):
        case_from_json({**data, "env": [["A", 1]]}, case.notebook, case.fixture, "", "")


@pytest.mark.parametrize(
    ("fixture", "lines"),
    [
        (
            "env:\n  PORT: 8080\nparameters: {region_code: fr}\n",
            [
                "jobs/env_job.yaml:2: `env` variable 'PORT' must be text, got int 8080",
                '  hint: quote it if you meant the text: PORT: "8080"; write one `NAME: "text"` per line; *',
            ],
        ),
        (
            "cases:\n  fr:\n    parameters: {region_code: fr}\n    env:\n      DEBUG: yes\n",
            [
                "jobs/env_job.yaml:5: case 'fr': `env` variable 'DEBUG' must be text, got a boolean",
                '  hint: quote it if you meant the text: DEBUG: "yes"; *',
            ],
        ),
        (
            "cases:\n  fr:\n    parameters: {region_code: fr}\n    env:\n      DB_PASSWORD: 123456789\n",
            ["jobs/env_job.yaml:5: case 'fr': `env` variable 'DB_PASSWORD' must be text, got a number"],
        ),
        (
            "env:\n  1BAD: x\nparameters: {region_code: fr}\n",
            [
                "jobs/env_job.yaml:2: `env` name '1BAD' is not a valid environment variable name",
                "  hint: use letters, digits and '_', not starting with a digit",
            ],
        ),
        (
            "env: [A, B]\nparameters: {region_code: fr}\n",
            ["jobs/env_job.yaml:1: `env` must be a mapping of variable names to text, got a list"],
        ),
        (
            "cases:\n  fr:\n    region_code: fr\n    env: {A: b}\n",
            ["jobs/env_job.yaml:4: case 'fr': * 'env' *"],
        ),
    ],
    ids=["number", "boolean-in-a-case", "secret-number", "bad-name", "not-a-mapping", "short-form"],
)
def test_an_env_value_that_is_not_text_is_a_collection_error(
    pytester: pytest.Pytester, fixture: str, lines: list[str]
) -> None:
    write(pytester, fixture)
    result = pytester.runpytest("-p", "no:xdist", "--collect-only")
    result.stdout.fnmatch_lines(["*ERROR collecting jobs/env_job.ipynb*", *lines])
    assert "123456789" not in result.stdout.str()  # a credential's value is not printed
    assert "Traceback" not in result.stdout.str()


def test_a_kernel_key_differs_by_env_and_adds_it_after_cleaning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKEN", "inherited-secret-value")
    key = KernelKey("python3", "/tmp", clean_env=True, env=(("DB_PASSWORD", "from-the-fixture"),))
    assert key != KernelKey("python3", "/tmp", clean_env=True)
    environ = key.environ()
    assert "MY_TOKEN" not in environ
    assert environ["DB_PASSWORD"] == "from-the-fixture"  # noqa: S105 - a fake credential
    assert key.redactor().text("x from-the-fixture inherited-secret-value") == f"x {MASK} {MASK}"
    extra = KernelKey("python3", "/tmp", redact=("PN_PRIVATE_*",), env=(("PN_PRIVATE_THING", "private-value"),))
    assert extra.redactor().text("private-value") == MASK  # notebooks_redact names count too


@pytest.mark.kernel
@pytest.mark.parametrize(
    "args",
    [["-p", "no:xdist"], ["-p", "no:xdist", "--notebooks-kernel-start=spawn"], ["-n", "2"]],
    ids=["forked", "spawned", "xdist"],
)
def test_each_case_kernel_gets_its_env(pytester: pytest.Pytester, args: list[str]) -> None:
    """Kernels started ahead are matched by env too: a case never runs in one started with another's."""
    write(pytester, THREE_REGIONS)
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=3)


MARKED = "SECRET-MARKER-env-4d2c9b"  # a fake credential, searched for in every output
LEAKY = [
    PARAMS,
    "import os\n"
    "assert 'MY_TOKEN' not in os.environ  # notebooks_kernel_env = clean\n"
    "password = os.environ['DB_PASSWORD']\n"
    "print('password', password, 'host', os.environ['DB_HOST'])",
    "if region_code == 'fr':\n    raise ValueError(f'login failed with {password}')",
]
LEAKY_FIXTURE = f"""\
env:
  DB_HOST: db.example.org
cases:
  luna:
    parameters: {{region_code: luna}}
    env: {{DB_PASSWORD: {MARKED}}}
  fr:
    parameters: {{region_code: fr, run_date: {MARKED}}}
    env: {{DB_PASSWORD: {MARKED}}}
"""


@pytest.mark.kernel
def test_a_secret_in_env_is_masked_everywhere_with_a_clean_kernel_env(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TOKEN", "SECRET-MARKER-inherited-1f2e")
    write(pytester, LEAKY_FIXTURE, LEAKY)  # type: ignore[arg-type]
    result = pytester.runpytest_subprocess(
        "-p",
        "no:xdist",
        "--notebooks-kernel-env=clean",
        "--junitxml=junit.xml",
        "--notebooks-html=report.html",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["FAILED jobs/env_job.ipynb::fr - cell 3 (In [[]4]): ValueError: login failed with ***"]
    )
    sinks = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    for name in ("junit.xml", "report.html"):
        sinks[name] = (pytester.path / name).read_text()
    for path in (pytester.path / "notebook-outputs").rglob("*"):
        if path.is_file():
            sinks[str(path.relative_to(pytester.path))] = path.read_text()
    assert {"notebook-outputs/results.json", "notebook-outputs/jobs/env_job/luna.ipynb"} <= set(sinks)
    for name, text in sinks.items():
        assert "SECRET-MARKER" not in text, f"a secret in {name}"
    assert f"password {MASK} host db.example.org" in sinks["notebook-outputs/jobs/env_job/luna.ipynb"]
    results = json.loads(sinks["notebook-outputs/results.json"])
    fr = next(case for case in results["cases"] if case["case"] == "fr")
    assert fr["parameters"]["run_date"] == MASK
