"""The GitHub Actions workflows: schema-valid, zizmor-clean, pinned, and their commands really work.

The reusable workflows (`reusable-*.yml`) are what adopters call; example_repo's `notebooks-*.yml`
call them. Their `run:` steps are read from the YAML and run here as the runner would
(tests/workflow_steps.py): in a copy of example_repo made into a git repository with an origin,
with fake `gh` and `nbpromote` programs where the step talks to GitHub or must see a given exit
code. tests/test_adoption.py runs the same steps in a fresh adopter repository with the built wheel.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

from tests.example import example_repository
from tests.gitrepo import AUTHOR, commit_all
from tests.workflow_steps import (
    COMMENT_VALUES,
    ROOT,
    WORKFLOWS_DIR,
    StepRun,
    fake_program,
    inputs_of,
    load,
    run_step,
    steps,
    with_path,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli below 3.11
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml"))
REUSABLE = ("reusable-comment.yml", "reusable-gate.yml", "reusable-promote.yml", "reusable-shards.yml")
PINNED = re.compile(r"^\s*(?:-\s*)?uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$")
LOCAL_CALL = re.compile(
    r"^    uses: \./\.github/workflows/(reusable-[a-z]+\.yml)(?: # zizmor: ignore\[self-repository\] .+)?$"
)
# Checked against the actions' own repositories (the tag's commit); every one runs on Node 24.
VERIFIED = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "actions/github-script": ("ed597411d8f924073f98dfc5c65a23a2325f34cd", "v8.0.0"),
    "actions/cache/restore": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
    "actions/cache/save": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    # docs.yml and release.yml (issue 26); upload-pages-artifact v5.0.0 itself pins upload-artifact v7.0.0
    "actions/upload-pages-artifact": ("fc324d3547104276b827a68afc52ff2a11cc49c9", "v5.0.0"),
    "actions/deploy-pages": ("cd2ce8fcbc39b97be8ca5fce6e763baed58fa128", "v5.0.0"),
    "actions/attest-build-provenance": ("a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32", "v4.1.0"),
    # a Docker action, not Node; the tag's commit as public workflows pin it (not checked against the
    # action's repository here, whose snapshot ends at v1.8.14): check it before the first release
    "pypa/gh-action-pypi-publish": ("ed0c53931b1dc9bd32cbe73a98c7f6766f8a527e", "v1.13.0"),
}


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[s3]' --group dev")
    return found


# --- static checks ----------------------------------------------------------------------------


def test_workflows_match_the_github_schema() -> None:
    run = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_dependabot_keeps_the_pins_current() -> None:
    config = WORKFLOWS_DIR.parent / "dependabot.yml"
    run = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    ecosystems = {update["package-ecosystem"] for update in yaml.safe_load(config.read_text())["updates"]}
    assert ecosystems == {"github-actions", "pip"}


def test_zizmor_finds_nothing() -> None:
    run = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", str(WORKFLOWS_DIR)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No findings to report" in run.stdout


def test_every_action_is_a_verified_release_pinned_by_sha() -> None:
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            if not re.match(r"^\s*(?:-\s*)?uses:", line):
                continue
            local = LOCAL_CALL.match(line)
            if local:  # example_repo's callers call the reusable workflows of the same commit
                assert workflow.name.startswith("notebooks-"), f"{workflow.name}: {line.strip()}"
                assert (WORKFLOWS_DIR / local.group(1)).is_file(), line
                continue
            pinned = PINNED.match(line)
            assert pinned, f"{workflow.name}: {line.strip()}"
            action, sha, version = pinned.groups()
            assert VERIFIED.get(action) == (sha, version), (
                f"{workflow.name}: {action}@{sha} # {version} is not verified"
            )


def test_no_expression_is_pasted_into_a_script() -> None:
    """Every value reaches a script through env:, never as `${{ }}` text (template injection)."""
    for workflow in WORKFLOWS:
        for job_id, job in load(workflow.name)["jobs"].items():
            for step in job.get("steps", []):
                if "run" in step:
                    assert "${{" not in step["run"], f"{workflow.name} {job_id}: {step.get('name')}"
                    assert "| head" not in step["run"], f"{workflow.name}: a pipe into head dies of SIGPIPE"


def test_pytest_options_carry_their_values() -> None:
    """`--notebooks-x=value`: a separate value naming an existing path moves pytest's rootdir."""
    for workflow in REUSABLE:
        for job in load(workflow)["jobs"].values():
            for step in job.get("steps", []):
                separate = re.findall(r"--notebooks-[a-z-]+(?![a-z=-])", step.get("run", ""))
                assert not separate, f"{workflow}: {step.get('name')}: {separate}"


def test_the_install_step_is_one_script_everywhere() -> None:
    scripts = {
        (workflow, job_id, step["name"]): step["run"]
        for workflow in REUSABLE
        for job_id, job in load(workflow)["jobs"].items()
        for step in job.get("steps", [])
        if step.get("name", "").startswith("Install pytest-notebooks")
    }
    assert len(scripts) == 5  # gate; promote's test and promote jobs; shards' shard and merge jobs
    assert len(set(scripts.values())) == 1, sorted(scripts)
    script = next(iter(scripts.values()))
    assert "pip install -e ." not in script
    assert '"${GITHUB_WORKSPACE}[s3,jupytext]"' in script  # plugin-from-source: this checkout (not SC1087)


PLUGIN_SPEC = (
    "pytest-notebooks[s3] @ git+https://github.com/pytest-notebooks/pytest-notebooks@"
    + "0123456789abcdef" * 2
    + "01234567"
)
FAKE_PYTHON = """\
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["-m", "pytest"]:
    print(os.environ["FAKE_PYTEST_SAYS"])
    sys.exit(int(os.environ["FAKE_PYTEST_CODE"]))
"""


@pytest.mark.parametrize(
    ("from_source", "requirements", "pip_args"),
    [
        ("false", "", [PLUGIN_SPEC]),
        ("false", "requirements.txt", [PLUGIN_SPEC, "--requirement", "requirements.txt"]),
        ("false", "ci/reqs.in", [PLUGIN_SPEC, "--requirement", "ci/reqs.in"]),
        ("false", ".[notebooks]", [PLUGIN_SPEC, ".[notebooks]"]),
        ("true", "", ["{workspace}[s3,jupytext]"]),
    ],
)
def test_the_install_step_installs_the_plugin_not_the_repository(
    tmp_path: Path, from_source: str, requirements: str, pip_args: list[str]
) -> None:
    fake_program(tmp_path / "bin", "python", FAKE_PYTHON)
    fake_program(tmp_path / "bin", "nbpromote", "print('nbpromote (pytest-notebooks 0.1.0)')")
    values = {"inputs.plugin-from-source": from_source, "inputs.requirements": requirements}
    values["inputs.plugin-spec"] = PLUGIN_SPEC
    overrides = {"FAKE_LOG": str(tmp_path / "calls.jsonl"), "FAKE_PYTEST_CODE": "0"}
    overrides["FAKE_PYTEST_SAYS"] = "registered third-party plugins:\n  pytest-notebooks-0.1.0 at /venv/plugin.py"
    install = "Install pytest-notebooks and the notebooks' requirements"
    ran = run_step("reusable-gate.yml", "test", install, tmp_path, values, with_path(tmp_path / "bin"), overrides)
    assert ran.code == 0, ran.text
    pip, pytest_call = (json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines())
    assert pip == ["-m", "pip", "install", *(arg.format(workspace=tmp_path) for arg in pip_args)]
    assert pytest_call == ["-m", "pytest", "-VV"]
    assert "pytest-notebooks-0.1.0 at /venv/plugin.py" in ran.stdout


def test_the_install_step_stops_when_pytest_lacks_the_plugin(tmp_path: Path) -> None:
    fake_program(tmp_path / "bin", "python", FAKE_PYTHON)
    fake_program(tmp_path / "bin", "nbpromote", "print('nbpromote (pytest-notebooks 0.1.0)')")
    says = 'Error while loading plugin "pytest11".\nImportError: cannot import name X'
    overrides = {"FAKE_LOG": str(tmp_path / "calls.jsonl"), "FAKE_PYTEST_CODE": "3", "FAKE_PYTEST_SAYS": says}
    install = "Install pytest-notebooks and the notebooks' requirements"
    values = {"inputs.plugin-spec": PLUGIN_SPEC}
    ran = run_step("reusable-gate.yml", "test", install, tmp_path, values, with_path(tmp_path / "bin"), overrides)
    assert ran.code == 1
    assert says in ran.stdout  # what pytest said, then the annotation
    assert "::error title=install::pytest does not load the pytest-notebooks plugin after: pip install" in ran.stdout


@pytest.mark.parametrize("workflow", ["reusable-gate.yml", "reusable-promote.yml", "reusable-shards.yml"])
def test_no_default_plugin_names_an_unpublished_package(tmp_path: Path, workflow: str) -> None:
    """Copied as shown with the default inputs, the install stops and says what to write: a default
    of `pytest-notebooks[s3]==0.1.0` named a release that is not on the index (and whoever registered
    the name first would have run code in every adopter's promote job)."""
    assert inputs_of(workflow)["plugin-spec"]["default"] == ""
    assert inputs_of(workflow)["plugin-from-source"]["default"] is False
    fake_program(tmp_path / "bin", "python", FAKE_PYTHON)
    overrides = {"FAKE_LOG": str(tmp_path / "calls.jsonl"), "FAKE_PYTEST_CODE": "0", "FAKE_PYTEST_SAYS": ""}
    install = "Install pytest-notebooks and the notebooks' requirements"
    jobs = load(workflow)["jobs"].items()
    job = next(name for name, body in jobs if any(step.get("name") == install for step in body.get("steps", [])))
    ran = run_step(workflow, job, install, tmp_path, {}, with_path(tmp_path / "bin"), overrides)
    assert ran.code == 1
    assert "::error title=install::the plugin-spec input is required: pin the plugin to the commit" in ran.stdout
    assert not (tmp_path / "calls.jsonl").exists()  # pip never ran


def test_notebooks_run_without_cloud_credentials() -> None:
    workflow = load("reusable-promote.yml")
    assert "env" not in workflow
    test_job, promote_job = workflow["jobs"]["test"], workflow["jobs"]["promote"]
    assert test_job["permissions"] == {"contents": "read"}
    assert not any("aws-actions" in step.get("uses", "") for step in test_job["steps"])
    assert promote_job["permissions"] == {"contents": "read", "id-token": "write"}
    assert "env" not in promote_job
    assert "env" not in test_job
    names = [step.get("name") or step["uses"].split("@")[0] for step in promote_job["steps"]]
    assert names == [
        "actions/checkout",
        "actions/setup-python",
        "Install pytest-notebooks alone",  # no requirements: nothing of the notebooks runs here
        "Download the test job's results",
        "Assume the promotion role",  # right before nbpromote: earlier steps never see credentials
        "Promote or roll back",
        "Show what is live",
    ]
    install = steps("reusable-promote.yml", "promote")["Install pytest-notebooks alone"]
    assert install["env"]["REQUIREMENTS"] == ""
    # the install check runs pytest where no conftest.py is: no repository code runs in this job
    assert 'plugins=$(cd "$(mktemp -d)" && python -m pytest -VV 2>&1)' in install["run"]
    aws = promote_job["steps"][4]["with"]
    assert aws["role-to-assume"] == "${{ inputs.aws-role }}"
    assert aws["role-duration-seconds"] == 900


def test_promotions_queue_and_are_never_cancelled() -> None:
    workflow = load("reusable-promote.yml")
    assert workflow["concurrency"] == {
        "group": "pytest-notebooks-promote-${{ inputs.working-directory }}-${{ inputs.target }}",
        "cancel-in-progress": False,
        "queue": "max",
    }
    assert workflow["jobs"]["test"]["needs"] == "guard"
    assert workflow["jobs"]["promote"]["needs"] == ["guard", "test"]
    caller = load("notebooks-promote.yml")
    assert "concurrency" not in caller  # the same group in caller and callee deadlocks


@pytest.mark.parametrize(
    ("ref", "default", "code"),
    [
        ("refs/heads/main", "main", 0),
        ("refs/heads/fix", "main", 1),
        ("refs/tags/v1", "main", 1),
        ("refs/heads/main", "", 1),
    ],
)
def test_only_the_default_branch_promotes(tmp_path: Path, ref: str, default: str, code: int) -> None:
    values = {"github.ref": ref, "github.event.repository.default_branch": default}
    ran = run_step("reusable-promote.yml", "guard", "Refuse a ref other than the default branch", tmp_path, values)
    assert ran.code == code, ran.text
    if code:
        assert "::error title=nbpromote::refused: promotions and rollbacks run from the default branch" in ran.stdout
        assert f"this run is on {ref}." in ran.stdout


FAKE_NBPROMOTE = """\
import json, os, sys
codes = os.environ["FAKE_CODES"].split()
calls = open(os.environ["FAKE_LOG"]).read().splitlines() if os.path.exists(os.environ["FAKE_LOG"]) else []
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
print("nbpromote says hello")
sys.exit(int(codes[min(len(calls), len(codes) - 1)]))
"""


@pytest.mark.parametrize(
    ("codes", "release", "exit_code", "calls", "says"),
    [
        ("0", "", 0, 1, ""),
        ("3", "", 0, 1, "nothing to do: what is live is what would be promoted"),
        ("5", "", 0, 1, "::warning title=nbpromote::partial promotion"),
        ("4", "", 4, 1, "::error title=nbpromote::nbpromote promote exited 4"),
        ("1", "2", 1, 1, "::error title=nbpromote::nbpromote rollback exited 1"),
        ("6 0", "", 0, 2, "::notice title=nbpromote::another promotion holds the target; trying once more in 0 s"),
        ("6 6", "", 6, 2, "::error title=nbpromote::conflict: another promotion or rollback still holds the target"),
        ("0", "--prune", 2, 0, "::error title=nbpromote::rollback-to '--prune' is not a release id"),
        ("0", "1; rm -rf /", 2, 0, "is not a release id"),
    ],
)
def test_the_promote_step_reads_nbpromote_exit_codes(
    tmp_path: Path, codes: str, release: str, exit_code: int, calls: int, says: str
) -> None:
    fake_program(tmp_path / "bin", "nbpromote", FAKE_NBPROMOTE)
    log = tmp_path / "calls.jsonl"
    values = {"inputs.target": "s3://bucket/templates/", "inputs.rollback-to": release}
    overrides = {"FAKE_CODES": codes, "FAKE_LOG": str(log), "RETRY_WAIT": "0"}
    env = with_path(tmp_path / "bin")
    ran = run_step("reusable-promote.yml", "promote", "Promote or roll back", tmp_path, values, env, overrides)
    assert ran.code == exit_code, ran.text
    assert says in ran.stdout
    argv = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert len(argv) == calls
    if argv and release:
        assert argv[0] == ["rollback", release, "--target", "s3://bucket/templates/"]
    elif argv:
        assert argv[0] == [
            "promote",
            "--results",
            "notebook-outputs/results.json",
            "--target",
            "s3://bucket/templates/",
        ]


# --- the comment poster, with a fake gh ----------------------------------------------------------

FAKE_GH = """\
import json, os, sys
args = sys.argv[1:]
record = {"args": args}
if "--input" in args:
    record["input"] = json.loads(open(args[args.index("--input") + 1]).read())
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
for endpoint, answer in json.loads(os.environ["FAKE_ANSWERS"]).items():
    if any(arg.endswith(endpoint) for arg in args):
        sys.stdout.write(answer)
"""


def comment_step(tmp_path: Path, name: str, answers: Mapping[str, str], values: Mapping[str, str] = {}) -> StepRun:
    fake_program(tmp_path / "bin", "gh", FAKE_GH)
    overrides = {"FAKE_LOG": str(tmp_path / "gh.jsonl"), "FAKE_ANSWERS": json.dumps(answers)}
    env = with_path(tmp_path / "bin")
    return run_step("reusable-comment.yml", "comment", name, tmp_path, {**COMMENT_VALUES, **values}, env, overrides)


def gh_calls(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "gh.jsonl").read_text().splitlines()]


def test_the_comment_waits_for_a_gate_run_that_tested() -> None:
    job = load("reusable-comment.yml")["jobs"]["comment"]
    assert "github.event.workflow_run.event == 'pull_request'" in job["if"]
    assert (
        "github.event.workflow_run.conclusion == 'success' || github.event.workflow_run.conclusion == 'failure'"
        in (job["if"])
    )
    assert job["concurrency"]["cancel-in-progress"] is False
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}


@pytest.mark.parametrize(
    ("names", "found"), [("notebook-review\nother\n", "true"), ("other\n", "false"), ("", "false")]
)
def test_the_comment_acts_only_on_a_run_with_its_artifact(tmp_path: Path, names: str, found: str) -> None:
    ran = comment_step(tmp_path, "Find the gate's review artifact", {"/runs/4242/artifacts": names})
    assert ran.code == 0, ran.text
    assert ran.outputs == {"found": found}
    assert gh_calls(tmp_path)[0]["args"][:3] == [
        "api",
        "--paginate",
        "repos/acme/notebooks/actions/runs/4242/artifacts",
    ]
    if found == "false":
        assert "gate run 4242 has no artifact 'notebook-review'" in ran.stdout


@pytest.mark.parametrize(
    ("number", "pr_sha", "code", "outputs"),
    [
        ("12\n", "a" * 40, 0, {"number": "12", "post": "true"}),
        ("12\n", "b" * 40, 0, {"post": "false"}),  # a newer push: its own run comments
        ("12; rm -rf ~\n", "a" * 40, 1, {}),
        (None, "a" * 40, 1, {}),
    ],
)
def test_the_comment_checks_the_pull_request(
    tmp_path: Path, number: str | None, pr_sha: str, code: int, outputs: dict[str, str]
) -> None:
    (tmp_path / "review").mkdir()
    if number is not None:
        (tmp_path / "review" / "pr-number.txt").write_text(number)
    ran = comment_step(tmp_path, "Check the pull request", {"/pulls/12": pr_sha + "\n"})
    assert ran.code == code, ran.text
    assert ran.outputs == outputs


def test_the_comment_is_capped_in_characters_at_a_line(tmp_path: Path) -> None:
    (tmp_path / "review").mkdir()
    line = "| ✅ | notebooks/vid_agg.ipynb | 🚀 case | 1.0 s |\n"  # emoji: 4 bytes, one character
    review = "<!-- pytest-notebooks:review -->\n" + line * 3000
    (tmp_path / "review" / "review.md").write_text(review, encoding="utf-8")
    ran = comment_step(tmp_path, "Cap the comment body", {})
    assert ran.code == 0, ran.text
    body = json.loads((tmp_path / "comment.json").read_text(encoding="utf-8"))["body"]
    assert len(body) <= 65000 < len(review)
    kept, note = body.split("\n\n_The review was cut here")
    assert review.startswith(kept)
    assert kept.endswith("1.0 s |")  # whole lines only
    cut_note, footer = note.split("\n\n_Executed notebooks")
    assert cut_note.endswith(
        "the whole of it is in [the run's artifact](https://github.com/acme/notebooks/actions/runs/4242)._"
    )
    assert footer == (  # every comment links the artifact that holds the HTML report
        " and `report.html` (every case, failing cells highlighted): "
        "[the run's artifact](https://github.com/acme/notebooks/actions/runs/4242)._\n"
    )
    assert len(body.encode()) > 65000  # bytes are not the measure: a byte cap would cut far shorter


def test_a_missing_review_still_gets_a_marked_comment(tmp_path: Path) -> None:
    (tmp_path / "review").mkdir()
    ran = comment_step(tmp_path, "Cap the comment body", {})
    assert ran.code == 0, ran.text
    body = json.loads((tmp_path / "comment.json").read_text())["body"]
    assert body.startswith("<!-- pytest-notebooks:review -->\nThe notebook gate wrote no review; see [the run](")


@pytest.mark.parametrize(
    ("ids", "method", "endpoint"), [("111\n222\n", "PATCH", "issues/comments/111"), ("", "POST", "issues/12/comments")]
)
def test_the_comment_is_updated_or_created_once(tmp_path: Path, ids: str, method: str, endpoint: str) -> None:
    (tmp_path / "comment.json").write_text(json.dumps({"body": "<!-- pytest-notebooks:review -->\nhi"}))
    values = {"steps.pr.outputs.number": "12"}
    ran = comment_step(tmp_path, "Create or update the sticky comment", {"/issues/12/comments": ids}, values)
    assert ran.code == 0, ran.text
    lookup, write = gh_calls(tmp_path)
    assert lookup["args"][:3] == ["api", "--paginate", "repos/acme/notebooks/issues/12/comments"]
    assert "--jq" in lookup["args"]  # filtered by gh, read whole: no pipe into head
    assert write["args"][:4] == ["api", "--method", method, f"repos/acme/notebooks/{endpoint}"]
    assert write["input"] == {"body": "<!-- pytest-notebooks:review -->\nhi"}


# --- the gate's path filter ----------------------------------------------------------------------

PATHS = "notebooks/**\nlib/**\n  pyproject.toml  \n\n"


@pytest.mark.parametrize(
    ("changed", "event", "paths", "run"),
    [
        ("README.md", "pull_request", PATHS, "false"),
        ("notebooks/vid_agg.yaml", "pull_request", PATHS, "true"),
        ("lib/vidlib/deep/new.py", "pull_request", PATHS, "true"),
        ("pyproject.toml", "pull_request", PATHS, "true"),
        ("README.md", "pull_request", "", "true"),  # no filter: always
        ("README.md", "push", PATHS, "true"),  # the filter is for pull requests only
    ],
)
def test_the_gate_filters_paths_and_still_reports(
    tmp_path: Path, changed: str, event: str, paths: str, run: str
) -> None:
    origin = tmp_path / "origin"
    example_repository(origin)
    clone = git.Repo.clone_from(origin, tmp_path / "checkout")
    clone.git.checkout("-b", "feature")
    path = tmp_path / "checkout" / changed
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(path.read_text() + "\n" if path.exists() else "x = 1\n")
    commit_all(clone, "change")
    values = {"github.event_name": event, "github.base_ref": "main", "inputs.paths": paths}
    ran = run_step(
        "reusable-gate.yml", "test", "Decide whether the change touches the notebooks", tmp_path / "checkout", values
    )
    assert ran.code == 0, ran.text
    assert ran.outputs == {"run": run}
    if run == "false":
        assert "changes no file matching the paths input; no notebook ran" in ran.stdout
        assert "No notebook ran" in ran.summary
    gate = load("reusable-gate.yml")["jobs"]["test"]
    guarded = [step for step in gate["steps"] if "steps.scope.outputs.run == 'true'" in str(step.get("if", ""))]
    assert len(guarded) == len(gate["steps"]) - 2  # every step but the checkout and the decision


# --- the callers: example_repo's workflows and the documented snippets --------------------------


def check_call(job: Mapping[str, Any], where: str) -> str:
    """A job calling a reusable workflow passes only inputs it declares; returns the workflow's file name."""
    uses: str = job["uses"].split("@")[0]
    name = uses.rsplit("/", 1)[1]
    assert name in REUSABLE, where
    declared = inputs_of(name)
    for key, value in job.get("with", {}).items():
        assert key in declared, f"{where}: {name} has no input {key!r}"
        kind = declared[key]["type"]
        if not (isinstance(value, str) and "${{" in value):
            expected = {"boolean": bool, "number": int, "string": str}[kind]
            assert isinstance(value, expected), f"{where}: input {key} is a {kind}"
    return name


def test_example_repo_calls_the_reusable_workflows_from_source() -> None:
    for caller, callee in [
        ("notebooks-pr.yml", "reusable-gate.yml"),
        ("notebooks-comment.yml", "reusable-comment.yml"),
        ("notebooks-promote.yml", "reusable-promote.yml"),
        ("notebooks-shards.yml", "reusable-shards.yml"),
    ]:
        (job,) = load(caller)["jobs"].values()
        assert check_call(job, caller) == callee
        assert "steps" not in job
        if callee != "reusable-comment.yml":
            assert job["with"]["working-directory"] == "example_repo", caller
            assert job["with"]["plugin-from-source"] is True, caller
    gate_trigger = load("notebooks-pr.yml")["on"]
    assert gate_trigger == {"pull_request": None}  # no trigger paths: the required check always reports


def adoption_page() -> str:
    """docs/guides/ci.md, the page that shows an adopter's workflows."""
    return (ROOT / "docs" / "guides" / "ci.md").read_text()


def test_the_documented_snippets_call_what_exists() -> None:
    section = adoption_page()
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    called = set()
    for block in blocks:
        data = yaml.safe_load(block)
        for job_id, job in data.get("jobs", {}).items():
            if "uses" in job:
                assert job["uses"].startswith("pytest-notebooks/pytest-notebooks/.github/workflows/"), job_id
                assert job["uses"].endswith("@<sha>"), job["uses"]  # the same commit as plugin-spec
                if "plugin-spec" in job.get("with", {}):
                    assert job["with"]["plugin-spec"].endswith("@<sha>"), job_id
                called.add(check_call(job, f"docs/guides/ci.md {job_id}"))
    assert called == set(REUSABLE)


def test_the_documented_gate_runs_the_notebooks_when_only_the_library_changes() -> None:
    """A pull request that changes only lib/ must run the notebooks importing it (it ran none, green)."""
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", adoption_page(), re.DOTALL)]
    gates = [
        job["with"]["paths"]
        for data in blocks
        for job in data.get("jobs", {}).values()
        if job.get("uses", "").split("@")[0].endswith("/reusable-gate.yml") and "paths" in job.get("with", {})
    ]
    assert gates, "docs/guides/ci.md shows the gate with a paths filter"
    for paths in gates:
        assert "lib/**" in paths.split(), paths


def test_ci_covers_the_oldest_and_newest_python_and_the_lowest_versions() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    classifiers = pyproject["project"]["classifiers"]
    supported = sorted(
        (c.rsplit(" ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)),
        key=lambda v: tuple(map(int, v.split("."))),
    )
    jobs = load("ci.yml")["jobs"]
    assert jobs["test"]["strategy"]["matrix"]["python-version"] == [supported[0], supported[-1]]
    assert pyproject["project"]["requires-python"] == f">={supported[0]}"
    assert jobs["test"]["steps"][-1]["run"] == "make test PYTHON=python"
    lowest = steps("ci.yml", "minimum-versions")
    assert "--resolution lowest-direct" in lowest["Install the lowest versions pyproject.toml allows"]["run"]
    assert jobs["minimum-versions"]["steps"][1]["with"]["python-version"] == supported[0]


# --- the steps of a pull request and a promotion, in example_repo ----------------------------------


@pytest.mark.kernel
def test_the_workflow_steps_run_here(tmp_path: Path) -> None:
    origin_dir = tmp_path / "origin"
    example_repository(origin_dir)
    clone_dir = tmp_path / "checkout"
    clone = git.Repo.clone_from(origin_dir, clone_dir)
    env = with_path(Path(sys.executable).parent)  # the plugin as this test run has it installed

    # a pull request: one template edited on a branch
    clone.git.checkout("-b", "feature")
    report = clone_dir / "notebooks" / "report.ipynb"
    edited = report.read_text().replace("print(text)", "print(text.upper())")
    assert edited != report.read_text()
    report.write_text(edited)
    clone.git.commit("-am", "shout the report", env=AUTHOR)

    values = {"github.base_ref": "main", "github.event.pull_request.number": "7", "inputs.pytest-args": "-n 2"}
    tested = run_step("reusable-gate.yml", "test", "Test notebooks", clone_dir, values, env)
    # the edited title changes the report's output, so its snapshots fail, as a reviewer should see
    assert tested.code == 1, tested.text
    assert "outputs differ from the snapshot notebooks/__snapshots__/report/luna.ipynb" in tested.stdout
    reviewed = run_step("reusable-gate.yml", "test", "Write the review", clone_dir, values, env)
    assert reviewed.code == 0, reviewed.text
    review = (clone_dir / "notebook-outputs" / "review.md").read_text()
    assert review.startswith("<!-- pytest-notebooks:review -->\n### ❌ Notebook tests: 2 failed, ")
    assert "<details><summary>notebooks/report.ipynb: modified, 1 cell changed</summary>" in review
    assert "\n-print(text)\n+print(text.upper())\n" in review
    assert "#### Output changes (snapshots)" in review
    assert (clone_dir / "notebook-outputs" / "junit.xml").is_file()
    record = "Record the pull request number for the comment workflow"
    recorded = run_step("reusable-gate.yml", "test", record, clone_dir, values, env)
    assert recorded.code == 0, recorded.text
    assert (clone_dir / "notebook-outputs" / "pr-number.txt").read_text() == "7\n"

    # after the merge (here: main as it is), the promotion's two jobs, each in a checkout of its own
    test_job = git.Repo.clone_from(origin_dir, tmp_path / "test-job")
    merged = run_step("reusable-promote.yml", "test", "Test the merged commit", Path(test_job.working_dir), values, env)
    assert merged.code == 0, merged.text
    promote_dir = Path(git.Repo.clone_from(origin_dir, tmp_path / "promote-job").working_dir)
    shutil.copytree(Path(test_job.working_dir) / "notebook-outputs", promote_dir / "notebook-outputs")  # the artifact
    values["inputs.target"] = str(tmp_path / "live")
    first = run_step("reusable-promote.yml", "promote", "Promote or roll back", promote_dir, values, env)
    assert first.code == 0, first.text
    live = sorted(p.relative_to(tmp_path / "live").as_posix() for p in (tmp_path / "live").glob("*.ipynb"))
    # device_share.py, a text template, goes live as the .ipynb its case ran (text_templates = "ipynb")
    assert live == ["collect_plays.ipynb", "device_share.ipynb", "enrich_geo.ipynb", "report.ipynb", "vid_agg.ipynb"]
    second = run_step("reusable-promote.yml", "promote", "Promote or roll back", promote_dir, values, env)
    assert second.code == 0, second.text
    assert "nothing to do: what is live is what would be promoted" in second.stdout
    shown = run_step("reusable-promote.yml", "promote", "Show what is live", promote_dir, values, env)
    assert shown.code == 0, shown.text
    assert shown.summary.startswith("````text\n")
    assert shown.summary.endswith("\n````\n")
    assert "vid_agg.ipynb" in shown.summary


@pytest.mark.kernel
def test_the_shard_matrix_runs_every_case_once_and_merges(tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    repo = example_repository(repo_dir)
    env = with_path(Path(sys.executable).parent)
    runner_temp = tmp_path / "runner-temp"  # ${{ runner.temp }}: outside the checkout, so it stays clean
    planned = run_step("reusable-shards.yml", "plan", "List the shards", repo_dir, {})
    assert planned.outputs == {"list": "[1,2,3,4]"}
    values = {"runner.temp": str(runner_temp), "inputs.pytest-args": "-n 0"}

    def run_shards(artifacts: Path) -> None:
        for shard in ("1", "2", "3", "4"):  # each on a machine of its own: a clean checkout
            ran = run_step(
                "reusable-shards.yml", "shard", "Test one shard", repo_dir, {**values, "matrix.shard": shard}, env
            )
            assert ran.code == 0, ran.text  # exit 5 (no case in this shard) counts as passed
            shutil.copytree(repo_dir / "shard-results", artifacts, dirs_exist_ok=True)  # upload-artifact
            repo.git.clean("-fdx")

    def merge(artifacts: Path) -> StepRun:
        shutil.rmtree(runner_temp / "shard-results", ignore_errors=True)
        shutil.copytree(artifacts, runner_temp / "shard-results")  # download-artifact, merge-multiple
        merged = run_step("reusable-shards.yml", "merge", "Merge them into one results file", repo_dir, values, env)
        repo.git.clean("-fdx")
        return merged

    first = tmp_path / "first"
    run_shards(first)
    # one shard's machine died: the merge says which, keeps the others' results and fails
    missing = tmp_path / "missing"
    shutil.copytree(first, missing, ignore=shutil.ignore_patterns("*-3.*"))
    partial = merge(missing)
    assert partial.code == 1, partial.text
    assert "::error title=shards::shard 3/4 left no results: it failed before its tests ran" in partial.stdout
    assert "### Notebook shards: 3 of 4 wrote results" in partial.summary
    assert partial.outputs == {"merged": "true"}

    merged = merge(first)
    assert merged.code == 0, merged.text
    assert merged.outputs == {"merged": "true"}
    durations = runner_temp / "notebook-durations" / "results.json"  # what the cache saves
    document = json.loads(durations.read_text())
    nodeids = [case["nodeid"] for case in document["cases"]]
    assert len(nodeids) == len(set(nodeids)) == 10  # every case of example_repo, once
    assert document["summary"] == {"passed": 10}

    # the next run: every shard balances by the same restored durations, and still runs each case once
    second = tmp_path / "second"
    run_shards(second)
    assert merge(second).code == 0
    again = json.loads(durations.read_text())
    assert sorted(case["nodeid"] for case in again["cases"]) == sorted(nodeids)
