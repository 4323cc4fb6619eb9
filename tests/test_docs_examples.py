"""Every example on the documentation site (docs/*.md) and in README.md is executed, as a new user
would try it.

- A fenced ``yaml`` block must carry a ``title="..."`` naming the file it is: ``gate_*.yaml``
  blocks are loaded with qagate's own gate-file loader, ``qa_models/*.yaml`` blocks with the
  model-declaration loader, and the CI files (GitHub Actions, GitLab CI) are parsed as YAML and
  their commands checked. A ``--8<-- "path"`` line inside a block is replaced by that file, as
  the site's snippets extension does.
- Every ``qagate ...`` command in a ``bash`` block is parsed by the real ``qagate`` argument
  parser (the sub-command and every option must exist, values must parse); every ``qagate``
  line of a synopsis (``text`` block) names a real sub-command and only options it has.
- The example project ``docs/examples/quickstart`` (replayed answers: no weights, no torch) is
  run with pytest, and every line of a block titled ``output of docs/examples/quickstart...`` is
  a line that run printed.
- Every ``python`` block runs: the quickstart's own test files in that pytest run, any other
  block as a script in a fresh interpreter, whose output must be the block titled
  ``output of <its title>``.
- Every ``--qagate-*`` option written anywhere on the site exists, and every option and every
  sub-command is documented on the site (the options page, the command page).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from qagate import cli
from qagate.gating.gatefile import load_gate_file
from qagate.inference.config import load_model_spec
from qagate.pytest_plugin.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)(?P<attrs>[^\n`]*)$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
SNIPPET = re.compile(r'^\s*--8<--\s+"(?P<path>[^":]+)"\s*$')
CI_FILES = {"docs/github-actions.yml", ".gitlab-ci.yml"}


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    title: str | None
    text: str

    @property
    def where(self) -> str:
        folder = "" if self.page == "README.md" else "docs/"
        return f"{folder}{self.page}:{self.line}"


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def sources() -> list[Path]:
    """The site's pages and the README, whose examples are checked alike."""
    return [*pages(), ROOT / "README.md"]


def blocks() -> Iterator[Block]:
    """The fenced code blocks of every page and the README, dedented, snippet includes resolved."""
    for page in sources():
        lines = page.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            match = FENCE.match(lines[i])
            if not match or not match["lang"]:
                i += 1
                continue
            indent, start, body = len(match["indent"]), i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i][indent:])
                i += 1
            i += 1
            title = TITLE.search(match["attrs"])
            expanded: list[str] = []
            for line in body:
                snippet = SNIPPET.match(line)
                expanded += (ROOT / snippet["path"]).read_text().splitlines() if snippet else [line]
            text = "\n".join(expanded) + "\n"
            yield Block(page.name, start, match["lang"], title["title"] if title else None, text)


BLOCKS = list(blocks())
YAML = [b for b in BLOCKS if b.lang in ("yaml", "yml")]
GATES = [b for b in YAML if b.title and re.fullmatch(r"gate_.*\.ya?ml", Path(b.title).name)]
MODELS = [b for b in YAML if b.title and "qa_models/" in b.title]


def ids(found: list[Block]) -> list[str]:
    return [f"{b.where}:{b.title}" for b in found]


def test_the_site_has_examples_of_each_kind():
    # the extraction itself must keep working: a changed fence syntax would make every check vacuous
    assert len(GATES) >= 6, ids(GATES)
    assert len(MODELS) >= 6, ids(MODELS)
    assert {b.title for b in YAML} >= CI_FILES


@pytest.mark.parametrize("block", YAML, ids=ids(YAML))
def test_every_yaml_block_says_which_file_it_is(block):
    assert block.title, f'{block.where}: a yaml block needs title="<file>" (gate_*.yaml, qa_models/, CI)'
    assert block in GATES or block in MODELS or block.title in CI_FILES, (
        f"{block.where}: {block.title!r} is not gate_*.yaml, qa_models/*.yaml or one of {sorted(CI_FILES)}"
    )


@pytest.mark.parametrize("block", GATES, ids=ids(GATES))
def test_gate_file_examples_load(block, tmp_path, monkeypatch):
    values = "\n".join(line.split(" #")[0] for line in block.text.splitlines())  # comments dropped
    for name in re.findall(r"\$\{(\w+)\}", values):  # a variable without a default must be explained
        assert re.search(rf"`{name}=|{name}`", (DOCS / block.page).read_text()), (
            f"{block.where}: ${{{name}}} has no default and the page never says what to set it to"
        )
        monkeypatch.setenv(name, str(tmp_path / "data.json"))
    path = tmp_path / "quality_tests" / Path(block.title).name
    path.parent.mkdir()
    path.write_text(block.text, encoding="utf-8")
    gate = load_gate_file(path)
    assert gate.blocks, block.where


@pytest.mark.parametrize("block", MODELS, ids=ids(MODELS))
def test_model_declaration_examples_load(block, tmp_path):
    path = tmp_path / block.title
    path.parent.mkdir(parents=True)
    path.write_text(block.text, encoding="utf-8")
    spec = load_model_spec(path)
    assert spec.name == path.stem, f"{block.where}: the file is named after the model it declares"


@pytest.mark.parametrize("block", [b for b in YAML if b.title in CI_FILES], ids=lambda b: b.title)
def test_ci_files_parse_and_their_commands_exist(block):
    data = yaml.safe_load(block.text)
    assert isinstance(data, dict), block.where
    for command in shell_lines(block.text):
        check_command(command, block.where)


def shell_lines(text: str) -> Iterator[str]:
    """Logical command lines (continuations joined, comments and prompts dropped) that run qagate or
    pytest, from shell text or YAML (``run:`` / ``script:`` values)."""
    text = re.sub(r"\\\n\s*", " ", text)
    text = re.sub(r">\n((?:\s{10,}.*\n)+)", lambda m: " ".join(m[1].split()) + "\n", text)  # folded run: >
    for raw in text.splitlines():
        line = re.sub(r"^\s*(?:-\s+|run:\s*|\$\s+)?", "", raw).strip()
        line = re.sub(r"^(?:\.venv/bin/|python3? -m )", "", line)
        if re.match(r"(qagate|pytest)\s", line):
            yield line


def words(line: str) -> list[str]:
    line = line.split(" || ")[0].split(" && ")[0]
    try:
        argv = shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote in a comment
        argv = shlex.split(line.split(" #")[0])
    return argv


def check_command(line: str, where: str) -> None:
    argv = words(line)
    if argv[0] == "pytest":
        for word in argv[1:]:
            if word.startswith("--qagate-"):
                assert word.split("=")[0] in FLAGS, f"{where}: {word} is not a qagate option ({line})"
        return
    args = argv[1:]
    try:
        cli.build_parser(args).parse_args(args)
    except SystemExit as exc:
        pytest.fail(f"{where}: `{line}` is not a valid qagate command (argparse exit {exc.code})")


FLAGS = {option.flag for option in OPTIONS}
SHELL = [b for b in BLOCKS if b.lang in ("bash", "sh", "console")]
COMMANDS = [(b, line) for b in SHELL for line in shell_lines(b.text)]


def test_the_site_shows_commands():
    assert sum(1 for _, line in COMMANDS if line.startswith("qagate")) >= 10
    assert len(SYNOPSIS) >= 15


@pytest.mark.parametrize(("block", "line"), COMMANDS, ids=[f"{b.where}:{line[:40]}" for b, line in COMMANDS])
def test_shown_commands_parse(block, line):
    check_command(line, block.where)


def synopsis() -> Iterator[tuple[Block, str]]:
    for block in BLOCKS:
        if block.lang != "text" or (block.title or "").startswith("output of"):
            continue
        current = None
        for line in block.text.splitlines():
            if line.startswith("qagate "):
                current = line
                yield block, line
            elif current and line.startswith(" "):
                yield block, current.split()[0] + " " + current.split()[1] + " " + line.strip()


SYNOPSIS = list(synopsis())


@pytest.mark.parametrize(("block", "line"), SYNOPSIS, ids=[f"{b.where}:{line[:40]}" for b, line in SYNOPSIS])
def test_synopsis_lines_name_real_commands_and_options(block, line):
    name = line.split()[1]
    assert name in cli.COMMANDS, f"{block.where}: no sub-command {name!r}"
    parser = cli.build_parser([name])
    sub = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices[name]
    known = {flag for action in sub._actions for flag in action.option_strings}
    for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line):
        assert flag in known, f"{block.where}: qagate {name} has no option {flag} ({line})"


def test_every_qagate_option_on_the_site_exists_and_every_option_is_documented():
    text = {page.name: page.read_text(encoding="utf-8") for page in pages()}
    written = {flag for body in text.values() for flag in re.findall(r"--qagate-[a-z][a-z-]*[a-z]", body)}
    assert written <= FLAGS, f"options on the site that qagate does not have: {sorted(written - FLAGS)}"
    for option in OPTIONS:
        if option.name == "latency_questions":  # the old name, documented beside its new one
            assert option.flag in text["options.md"]
            continue
        assert f"`{option.flag}" in text["options.md"], f"{option.flag} is not on the options page"
    for name in cli.COMMANDS:
        assert f"qagate {name}" in text["commands.md"], f"qagate {name} is not on the command page"


def test_no_page_puts_a_variable_inside_a_yaml_flow_collection():
    # `{source: ${X}}` and `[${X}]` do not parse: YAML reads `${` there as a mapping's start
    for block in YAML:
        for number, line in enumerate(block.text.splitlines(), block.line + 1):
            assert not re.search(r"[{\[,]\s*\$\{", line), f"docs/{block.page}:{number}: {line.strip()}"


QUICKSTART = ROOT / "docs" / "examples" / "quickstart"
OUTPUTS = [b for b in BLOCKS if b.title and b.title.startswith("output of docs/examples/quickstart")]


@pytest.fixture(scope="module")
def quickstart_output(tmp_path_factory) -> set[str]:
    """The lines ``pytest quality_tests/`` prints on a first run of the quickstart project."""
    project = tmp_path_factory.mktemp("quickstart") / "project"
    shutil.copytree(QUICKSTART, project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "QAGATE_"))}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "quality_tests", "-p", "no:cacheprovider"],
        cwd=project,
        env={**env, "HF_HUB_OFFLINE": "1", "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]  # the UNDECIDED rule fails
    return {line.rstrip() for line in run.stdout.splitlines()}


def test_the_site_shows_the_quickstart_output():
    assert {b.page for b in OUTPUTS} >= {"index.md", "getting-started.md", "README.md"}, ids(OUTPUTS)


@pytest.mark.parametrize("block", OUTPUTS, ids=ids(OUTPUTS))
def test_shown_output_is_what_the_example_prints(block, quickstart_output):
    shown = [line.rstrip() for line in block.text.splitlines() if line.strip()]
    missing = [line for line in shown if line not in quickstart_output]
    assert not missing, f"{block.where}: lines the quickstart run did not print:\n" + "\n".join(missing)


PYTHON = [b for b in BLOCKS if b.lang == "python"]


def test_every_python_block_is_a_quickstart_file_or_a_script():
    for block in PYTHON:
        assert block.title, f'{block.where}: a python block needs title="<file>"'
        if block.title.startswith("quality_tests/"):
            assert block.text == (QUICKSTART / block.title).read_text(), (
                f"{block.where}: not the quickstart file"
            )


def test_the_quickstart_tests_pass(quickstart_output):
    for block in PYTHON:
        if block.title and block.title.startswith("quality_tests/"):
            assert any(line.startswith(f"{block.title} .") for line in quickstart_output), block.where


SCRIPTS = [b for b in PYTHON if b.title and not b.title.startswith("quality_tests/")]


@pytest.mark.parametrize("block", SCRIPTS, ids=ids(SCRIPTS))
def test_python_scripts_run_and_print_what_the_page_shows(block, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", block.text], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"{block.where}: {run.stderr[-2000:]}"
    shown = [b for b in BLOCKS if b.title == f"output of {block.title}"]
    assert shown, f'{block.where}: no block titled "output of {block.title}"'
    assert run.stdout.strip() == shown[0].text.strip(), f"{block.where}: printed {run.stdout!r}"


def test_every_gate_file_key_model_key_and_metric_is_documented():
    from qagate.gating import gatefile
    from qagate.inference.config import KEYS
    from qagate.scoring.registry import METRICS

    text = {page.name: page.read_text(encoding="utf-8") for page in pages()}
    gate_pages = text["gate-files.md"] + text["statistics.md"] + text["slices.md"]
    keys = {*gatefile.GATE_KEYS, *gatefile.DATASET_KEYS, *gatefile.BLOCK_KEYS, *gatefile.RULE_KEYS}
    missing = sorted(k for k in keys if not re.search(rf"(^|[\s{{,`]){k}(:|`)", gate_pages, re.M))
    assert not missing, f"gate-file keys not on the Gate files / Statistics / Slices pages: {missing}"
    missing = sorted(k for k in KEYS if not re.search(rf"(?m)^{k}:", text["models.md"]))
    assert not missing, f"model keys without an example line on the Models page: {missing}"
    missing = sorted(m for m in METRICS if f"`{m}" not in text["gate-files.md"])
    assert not missing, f"metrics not on the Gate files page: {missing}"


README = ROOT / "README.md"
TWO_COMMANDS = (
    "python3 -m venv .venv && .venv/bin/pip install -c constraints/lock.txt"
    ' -e ".[test,postgres,mlflow,openvino,docs]"',
    ".venv/bin/pytest",
)


def test_the_readme_is_short_and_keeps_the_two_commands_ci_runs():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    setup = [b for b in BLOCKS if b.page == "README.md" and b.lang == "bash"][0]
    assert setup.text.strip().splitlines() == list(TWO_COMMANDS)
    assert TWO_COMMANDS[0] in (ROOT / ".ci" / "run").read_text()


def test_the_readme_gate_is_the_quickstart_gate_file():
    shown = [b for b in GATES if b.page == "README.md"]
    assert [b.text for b in shown] == [(QUICKSTART / "quality_tests" / "gate_release.yaml").read_text()]


def test_the_readme_links_exist():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert len(links) >= 15, links
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert not missing, missing
