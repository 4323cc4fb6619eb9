"""pytest wiring for qagate: options, fixtures, gate files collected as tests, the summary.

Only the standard library, pytest and qagate's own standard-library modules are imported here:
pytest imports this module on every run (entry point ``pytest11``), so torch, transformers and
datasets load inside the fixtures and items that need them, and ``pytest --collect-only`` never
pays for them. Nothing here touches git, the network, a GPU or scans the file system at start-up.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from qagate.core.errors import QagateError
from qagate.pytest_plugin.collect import (
    SESSION_KEY,
    GateFileCollector,
    GateItem,
    GateSkipped,
    is_gate_file,
    relative,
    session_of,
    unreadable_gate_files,
)
from qagate.pytest_plugin.settings import OPTIONS, Settings, SettingsError, build_settings

if TYPE_CHECKING:  # pragma: no cover
    from qagate.pytest_plugin.session import QagateSession

SETTINGS_KEY = pytest.StashKey[Settings]()
STARTED_KEY = pytest.StashKey[float]()
HISTORY_NOTE_KEY = pytest.StashKey[str]()
PARTIAL_KEY = pytest.StashKey[bool]()
#: pytest's exit status under --qagate-strict when the gates passed but the run could not be
#: written to the history (it waits in the outbox); pytest itself uses 0-5.
EXIT_NOT_RECORDED = 6


class QagateHookspecs:
    """Hooks a conftest.py can implement."""

    @pytest.hookspec
    def pytest_qagate_prepare_model(self, config: pytest.Config, spec: Any) -> None:
        """Called once per session before a declared model is first built.

        Use it to put the model's files in place (build a demo model, unpack weights) so that
        the work happens only when a selected test needs that model, never at collection.
        """


# --- options and settings ---------------------------------------------------------------------


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(QagateHookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qagate", "qagate: gate question-answering models")
    for option in OPTIONS:
        default = "" if option.default is None else f"; default: {option.default}"
        help_text = f"{option.help} (ini: {option.ini}{default})"
        if option.parse is None:
            group.addoption(option.flag, dest=option.ini, action="store_true", default=False, help=help_text)
        else:
            group.addoption(
                option.flag,
                dest=option.ini,
                type=option.parse,
                default=None,
                metavar=option.name.upper(),
                help=help_text,
            )
        parser.addini(option.ini, help=help_text, type="string", default="")


def pytest_configure(config: pytest.Config) -> None:
    from qagate.pytest_plugin import workers
    from qagate.pytest_plugin.rootdir import check_path_options

    paths = [option.flag for option in OPTIONS if option.is_path or option.name == "dataset"]
    moved = check_path_options(config, paths, creates=["--qagate-history"])
    if moved:
        raise pytest.UsageError(moved)
    try:
        settings = build_settings(
            {option.name: config.getoption(option.ini) for option in OPTIONS},
            {option.ini: config.getini(option.ini) for option in OPTIONS},
            rootdir=Path(config.rootpath),
            invocation_dir=Path(config.invocation_params.dir),
            ini_dir=Path(config.inipath).parent if config.inipath else None,
        )
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    config.addinivalue_line("markers", "qagate: a rule collected from a gate_*.yaml file")

    def prepare(spec: Any) -> None:
        config.hook.pytest_qagate_prepare_model(config=config, spec=spec)

    def record_timing(timing: Any, extra_info: dict) -> None:
        """Every timing a speed rule judges is a pytest-benchmark record (one clock)."""
        workers.record_timing(config, timing, extra_info=extra_info)

    session_type = workers.configure(config)  # under pytest-xdist: worker or controller
    config.stash[SESSION_KEY] = session_type(settings, prepare_model=prepare, on_timing=record_timing)
    config.stash[STARTED_KEY] = time.time()


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Stored runs name their GPUs, so that a speed comparison can refuse another machine's run."""
    from qagate.timing.compare import gpus

    machine_info["qagate_gpus"] = gpus()


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return None
    session = session_of(config)
    parts = [
        f"default dataset={dataset_label(session.request(), config)}",
        f"models={relative(settings.models, config)}",
        f"baselines={relative(settings.baselines, config)}",
    ]
    if settings.strict:
        parts.append("strict")
    if settings.update_baselines or settings.regen_all:
        parts.append("UPDATING BASELINES" if not settings.regen_all else "REGENERATING ALL BASELINES")
    return "qagate: " + ", ".join(parts)


# --- fixtures (defined in qagate.pytest_plugin.fixtures; importing them here registers them) ---------------

from qagate.pytest_plugin.fixtures import (  # noqa: E402,F401
    qa_model,
    qagate_dataset,
    qagate_eval,
    qagate_latency,
    qagate_models,
    qagate_settings,
    students,
    teacher,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "qa_model" not in metafunc.fixturenames:
        return
    try:
        names = [spec.name for spec in session_of(metafunc.config).specs()]
    except QagateError as exc:
        raise pytest.Collector.CollectError(f"qagate: {exc}") from None
    metafunc.parametrize("qa_model", names, indirect=True, ids=names, scope="session")


# --- gate files -------------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_gate_file(file_path):
        return GateFileCollector.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A folder named like a gate file is a gate that cannot be read (an error), not tests."""
    return GateFileCollector.from_parent(parent, path=path) if is_gate_file(path) else None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """Gate files pytest passes over (a dangling or looping symbolic link) fail collection too."""
    report = yield
    if isinstance(collector, pytest.Directory) and report.passed and isinstance(report.result, list):
        report.result.extend(unreadable_gate_files(collector))
    return report


def pytest_collection_finish(session: pytest.Session) -> None:
    """Ask for BERTScore only for models a selected rule needs it for (it is expensive), and
    count the confidence rules this run judges: ``--qagate-family-alpha`` shares its error among
    them (qagate.gating.family; every xdist worker counts the same selected items)."""
    qsession = session.config.stash.get(SESSION_KEY, None)
    if qsession is None:
        return
    qsession.family_size = sum(
        1 for item in session.items if isinstance(item, GateItem) and item.case.rule.confidence is not None
    )
    for item in session.items:
        if isinstance(item, GateItem) and item.case.rule.metric == "bertscore_f1":
            qsession.bertscore_models.add((Path(item.models_folder), item.case.model))
            if item.case.rule.reference == "teacher":
                try:
                    teacher = qsession.teacher_name(item.models_folder)
                except QagateError:
                    continue
                qsession.bertscore_models.add((Path(item.models_folder), teacher))


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """Name the dataset each selected gate file really runs on (a gate file may set its own)."""
    qsession = config.stash.get(SESSION_KEY, None)
    if qsession is None:
        return []
    used = gate_datasets(qsession, items, config)
    if not used:
        return []
    return ["qagate gates: " + "; ".join(f"{gate} on {dataset}" for gate, dataset in used.items())]


def gate_datasets(
    qsession: "QagateSession", items: list[pytest.Item], config: pytest.Config
) -> dict[str, str]:
    """Gate file (relative) -> the dataset label it uses, for the selected gate items."""
    used: dict[str, str] = {}
    for item in items:
        if isinstance(item, (GateItem, GateSkipped)):
            request = qsession.request(item.gate.dataset)
            used[relative(item.path, config)] = dataset_label(request, config)
    return used


def pytest_deselected(items: list[pytest.Item]) -> None:
    """A run that deselects gate items (``-k``, ``-m``) is partial: the history marks it."""
    for item in items:
        if isinstance(item, (GateItem, GateSkipped)):
            item.config.stash[PARTIAL_KEY] = True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Keep skips and errors of gate items for the summary (verdicts are recorded in runtest)."""
    report = yield
    if isinstance(item, GateItem) and report.user_properties:  # JUnit properties: no secret shown
        from qagate.store.target import mask_secrets

        report.user_properties = [(name, mask_secrets(value)) for name, value in report.user_properties]
    if isinstance(item, (GateItem, GateSkipped)) and (report.skipped or report.failed):
        status = "skipped" if report.skipped else "error"
        if isinstance(item, GateItem):
            session_of(item.config).record_outcome(item.nodeid, item.case.model, item.case.rule, status)
        else:
            session_of(item.config).record_file_outcome(item.nodeid, status)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Append this run's gate results to the run history (``--qagate-history``)."""
    config = session.config
    qsession = config.stash.get(SESSION_KEY, None)
    settings = config.stash.get(SETTINGS_KEY, None)
    if qsession is not None and hasattr(config, "workerinput"):  # xdist: the controller reports
        from qagate.pytest_plugin import workers

        gates, partial = gate_datasets(qsession, session.items, config), is_partial(config)
        workers.send_report(config, qsession, session.items, gates=gates, partial=partial)
        return
    if qsession is None or settings is None or settings.history is None or not qsession.records:
        return
    from qagate.gating.family import family_of
    from qagate.pytest_plugin import workers
    from qagate.reports.outcomes import history_questions
    from qagate.store import history

    rows: list[Mapping[str, Any]] = [record.as_row() for record in qsession.records.values()]
    metrics: list[Mapping[str, Any]] = [
        {"model": row.model, "dataset": row.dataset, **row.metrics()} for row in qsession.evaluated()
    ]
    datasets = gate_datasets(qsession, session.items, config) | workers.reported_gates(qsession)
    run = history.build_run(
        results=rows,
        metrics=metrics,
        started=config.stash.get(STARTED_KEY, time.time()),
        exit_status=int(exitstatus),
        rootdir=Path(config.rootpath),
        settings={
            "dataset": ", ".join(sorted(set(datasets.values()))) or dataset_label(qsession.request(), config),
            "gates": datasets,
            "limit": settings.limit,
            "articles": settings.articles,
            "models": relative(settings.models, config),
            "args": list(config.invocation_params.args),
            "family_alpha": settings.family_alpha,
        },
        partial=is_partial(config) or workers.reported_partial(qsession),
        incomplete=bool(qsession.not_gated),
        baselines=qsession.baseline_changes(lambda path: relative(path, config)),
        family=family_of(rows, settings.family_alpha).as_dict(),
        questions=history_questions(qsession.evaluated()),  # for qagate diff RUN_A RUN_B
    )
    from qagate.reports.diff import run_slices

    # the run page's slice heat map and flipped questions (xdist: as the workers computed them)
    slices = run_slices(qsession.evaluated()) + workers.reported_slices(qsession)
    if slices:
        run["slices"] = slices
    from qagate.store import outbox

    def shown(where: Any) -> str:
        return str(relative(where, config)) if isinstance(where, Path) else str(where)

    recorded = outbox.record(settings.history, run, Path(config.rootpath), shown=shown)
    config.stash[HISTORY_NOTE_KEY] = "\n".join(recorded.lines)
    if not recorded.written and settings.strict and session.exitstatus == 0:
        session.exitstatus = EXIT_NOT_RECORDED  # --qagate-strict: an unrecorded run is an error
        config.stash[HISTORY_NOTE_KEY] += (
            f"\nERROR: --qagate-strict: the run was not recorded in the history "
            f"(exit status {EXIT_NOT_RECORDED})"
        )


def is_partial(config: pytest.Config) -> bool:
    """Whether only some gate items were selected (``-k``, ``-m``, node ids, deselection)."""
    option = config.option
    if (
        config.stash.get(PARTIAL_KEY, False)
        or bool(getattr(option, "keyword", None))
        or bool(getattr(option, "markexpr", None))
        or getattr(option, "lf", False)
    ):
        return True
    return any("::" in str(arg) for arg in config.invocation_params.args)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from qagate.reports import terminal as report

    qsession = config.stash.get(SESSION_KEY, None)
    if qsession is None:
        return
    evaluated = qsession.evaluated()
    records = list(qsession.records.values())
    actions = qsession.baseline_actions
    if not (evaluated or records or actions or qsession.not_gated):
        return
    verbosity = config.get_verbosity()
    write = terminalreporter.write_line
    terminalreporter.section("qagate")
    for line in report.session_summary(
        evaluated,
        records,
        verbosity=verbosity,
        not_gated=qsession.not_gated,
        strict=qsession.settings.strict,
        baselines={relative(path, config): action for path, action in actions.items()},
        family_alpha=qsession.settings.family_alpha,
    ):
        write(line)
    for line in (config.stash.get(HISTORY_NOTE_KEY, None) or "").splitlines():
        warning = line.startswith(("WARNING", "ERROR"))  # shown at every verbosity, -q too
        if warning or verbosity >= 0:
            write(f"history: {line}", red=warning, bold=warning)


def dataset_label(request: Any, config: pytest.Config) -> str:
    """A dataset request as the user would write it: paths relative to the rootdir, subsets."""
    spec = request.spec
    label = spec if spec == "sample" or spec.startswith("hf:") else relative(Path(spec), config)
    if request.articles:
        label += f" articles {request.articles[0]}-{request.articles[1]}"
    if request.limit:
        label += f" limit {request.limit}"
    if request.perturb:
        label += f" perturbed ({'+'.join(request.perturb)}, seed {request.perturb_seed})"
    return label
