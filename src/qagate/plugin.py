"""pytest wiring for qagate: options, fixtures, gate files collected as tests, the summary.

Only the standard library, pytest and qagate's own standard-library modules are imported here:
pytest imports this module on every run (entry point ``pytest11``), so torch, transformers and
datasets load inside the fixtures and items that need them, and ``pytest --collect-only`` never
pays for them. Nothing here touches git, the network, a GPU or scans the file system at start-up.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from qagate.errors import QagateError
from qagate.settings import OPTIONS, Settings, SettingsError, build_settings

if TYPE_CHECKING:  # pragma: no cover
    from qagate.gating.gatefile import GateCase, GateFile
    from qagate.session import QagateSession

SETTINGS_KEY = pytest.StashKey[Settings]()
SESSION_KEY = pytest.StashKey["QagateSession"]()
STARTED_KEY = pytest.StashKey[float]()
HISTORY_NOTE_KEY = pytest.StashKey[str]()
GATE_FILE_PREFIX = "gate_"
GATE_FILE_SUFFIXES = (".yaml", ".yml")


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
            group.addoption(option.flag, dest=option.ini, action="store_true", default=False,
                            help=help_text)
        else:
            group.addoption(option.flag, dest=option.ini, type=option.parse, default=None,
                            metavar=option.name.upper(), help=help_text)
        parser.addini(option.ini, help=help_text, type="string", default="")


def pytest_configure(config: pytest.Config) -> None:
    from qagate.session import QagateSession

    try:
        settings = build_settings(
            {option.name: config.getoption(option.ini) for option in OPTIONS},
            {option.ini: config.getini(option.ini) for option in OPTIONS},
            rootdir=Path(config.rootpath), invocation_dir=Path(config.invocation_params.dir),
            ini_dir=Path(config.inipath).parent if config.inipath else None)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    config.addinivalue_line("markers", "qagate: a rule collected from a gate_*.yaml file")

    def prepare(spec: Any) -> None:
        config.hook.pytest_qagate_prepare_model(config=config, spec=spec)

    config.stash[SESSION_KEY] = QagateSession(settings, prepare_model=prepare)
    config.stash[STARTED_KEY] = time.time()


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return None
    parts = [f"dataset={_dataset_label(settings, config)}", f"models={_rel(settings.models, config)}",
             f"baselines={_rel(settings.baselines, config)}"]
    if settings.limit:
        parts.append(f"limit={settings.limit}")
    if settings.update_baselines or settings.regen_all:
        parts.append("UPDATING BASELINES" if not settings.regen_all else "REGENERATING ALL BASELINES")
    return "qagate: " + ", ".join(parts)


def _session(config: pytest.Config) -> "QagateSession":
    return config.stash[SESSION_KEY]


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def qagate_settings(pytestconfig: pytest.Config) -> Settings:
    """The validated ``--qagate-*`` options and ``qagate_*`` ini values (a frozen Settings)."""
    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def qagate_dataset(pytestconfig: pytest.Config) -> Any:
    """The session's dataset (``--qagate-dataset``, limit, seed, articles), loaded once."""
    return _fixture_call(lambda: _session(pytestconfig).dataset())


@pytest.fixture(scope="session")
def qagate_models(pytestconfig: pytest.Config) -> list:
    """Every model declaration (ModelSpec) in the models folder, sorted by name."""
    return _fixture_call(lambda: list(_session(pytestconfig).specs()))


@pytest.fixture(scope="session")
def qa_model(request: pytest.FixtureRequest) -> Any:
    """Each declared model in turn (a test using it runs once per model; ids = model names)."""
    name = getattr(request, "param", None)
    if name is None:
        pytest.fail("qa_model is parametrised by the qagate plugin; request it from a test "
                    "function, not from another fixture", pytrace=False)
    return _fixture_call(lambda: _session(request.config).model(name))


@pytest.fixture(scope="session")
def teacher(pytestconfig: pytest.Config) -> Any:
    """The model declared with ``role: teacher`` (exactly one), built once per session."""
    session = _session(pytestconfig)
    return _fixture_call(lambda: session.model(session.teacher_name()))


@pytest.fixture(scope="session")
def students(pytestconfig: pytest.Config) -> list:
    """The models declared with ``role: student``, in name order, built once per session."""
    session = _session(pytestconfig)
    return _fixture_call(lambda: [session.model(spec.name) for spec in session.specs()
                                  if spec.role == "student"])


@pytest.fixture(scope="session")
def qagate_eval(pytestconfig: pytest.Config):
    """Factory ``qagate_eval(model_or_name, dataset=None, bertscore=False) -> EvalResult``.

    Each model is evaluated once per session per dataset; predictions come from the on-disk
    cache (``--qagate-cache``) when weights, tokenizer, dataset and engine settings are unchanged.
    ``dataset`` is a dataset spec such as ``"sample"`` or a path (default: the session's).
    """
    session = _session(pytestconfig)

    def evaluate(model: Any, dataset: str | None = None, *, bertscore: bool = False) -> Any:
        __tracebackhide__ = True
        return _fixture_call(lambda: session.evaluation(
            _model_name(session, model), request=_request(session, dataset),
            bertscore=bertscore or None))

    return evaluate


@pytest.fixture(scope="session")
def qagate_latency(pytestconfig: pytest.Config):
    """Factory ``qagate_latency(model_or_name) -> Latency``, measured fresh in this session.

    Timed on the first ``--qagate-latency-questions`` questions of the dataset; never cached
    across runs, because timings do not carry across runs or machines.
    """
    session = _session(pytestconfig)

    def latency(model: Any, dataset: str | None = None) -> Any:
        __tracebackhide__ = True
        return _fixture_call(lambda: session.latency(_model_name(session, model),
                                                     request=_request(session, dataset)))

    return latency


def _model_name(session: "QagateSession", model: Any) -> str:
    name = model if isinstance(model, str) else getattr(model, "name", None)
    if not isinstance(name, str):
        raise QagateError(f"expected a model or a model name, got {model!r}")
    session.spec(name)          # a clear error for names that are not declared
    return name


def _request(session: "QagateSession", dataset: str | None) -> Any:
    from qagate.gating.gatefile import DatasetRequest

    if dataset is None:
        return session.request()
    spec = dataset if dataset == "sample" or dataset.startswith("hf:") else str(Path(dataset).resolve())
    return session.request(DatasetRequest(spec))


def _fixture_call(make: Any) -> Any:
    """Run fixture work; a user error becomes one line instead of a traceback into qagate."""
    __tracebackhide__ = True
    try:
        return make()
    except QagateError as exc:
        pytest.fail(f"qagate: {exc}", pytrace=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "qa_model" not in metafunc.fixturenames:
        return
    try:
        names = [spec.name for spec in _session(metafunc.config).specs()]
    except QagateError as exc:
        raise pytest.Collector.CollectError(f"qagate: {exc}") from None
    metafunc.parametrize("qa_model", names, indirect=True, ids=names, scope="session")


# --- gate files -------------------------------------------------------------------------------

def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in GATE_FILE_SUFFIXES and file_path.name.startswith(GATE_FILE_PREFIX):
        return GateFileCollector.from_parent(parent, path=file_path)
    return None


class GateFileCollector(pytest.File):
    """A ``gate_*.yaml`` file: one child per model, one test per (rule, model)."""

    def collect(self) -> Iterator[pytest.Node]:
        from qagate.gating.gatefile import load_gate_file, resolve_cases

        session = _session(self.config)
        gate = load_gate_file(self.path, default_level=session.settings.confidence)
        folder = gate.models or session.settings.models
        missing = gate.missing_requirements()
        try:
            cases = resolve_cases(gate, session.roles(folder),
                                  models_source=_rel(folder, self.config))
        except QagateError:
            if not missing:
                raise
            yield GateSkipped.from_parent(self, name="requires", reason=_missing_reason(missing))
            return
        by_model: dict[str, list["GateCase"]] = {}
        for case in cases:
            by_model.setdefault(case.model, []).append(case)
        for model, model_cases in by_model.items():
            yield GateModel.from_parent(self, name=model, gate=gate, cases=model_cases)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        if excinfo.errisinstance(QagateError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class GateModel(pytest.Collector):
    """The rules of one gate file that apply to one model."""

    def __init__(self, *, gate: "GateFile", cases: list["GateCase"], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.cases = cases

    def collect(self) -> Iterator[pytest.Item]:
        for case in self.cases:
            yield GateItem.from_parent(self, name=case.rule.id, gate=self.gate, case=case)


class GateFailure(Exception):
    """A gate that did not pass; the message is the full report (no traceback is shown)."""


class GateItem(pytest.Item):
    """One rule applied to one model."""

    def __init__(self, *, gate: "GateFile", case: "GateCase", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.case = case
        self.add_marker("qagate")

    @property
    def models_folder(self) -> Path:
        return self.gate.models or _session(self.config).settings.models

    def setup(self) -> None:
        missing = self.gate.missing_requirements()
        if missing:
            pytest.skip(_missing_reason(missing))

    def runtest(self) -> None:
        from qagate.reports import terminal as report
        from qagate.session import Record

        session = _session(self.config)
        outcome = session.run_case(self.gate, self.case)
        verdict = outcome.verdict
        rule = self.case.rule
        dataset = outcome.dataset
        session.records[self.nodeid] = Record(
            self.nodeid, self.case.model, rule.id, rule.metric, rule.op, dataset.name,
            verdict.status, verdict.obtained, verdict.threshold)
        self._attach_properties(outcome)
        if verdict.passed:
            return
        accept = None
        if rule.reference == "baseline" and outcome.baseline_action is None:
            accept = f"pytest {shlex.quote(self.nodeid)} --qagate-update-baselines"
        text = report.failure_report(verdict, dataset=dataset.name, questions=len(dataset),
                                     accept_command=accept)
        if outcome.result is not None and rule.metric in ("exact_match", "f1", "bertscore_f1"):
            self.add_report_section("call", "qagate worst questions", report.worst_questions(
                dataset, outcome.result, teacher=outcome.teacher_result))
        if verdict.status == "undecided" and session.settings.undecided == "skip":
            pytest.skip(text.replace("\n", " "))
        raise GateFailure(text)

    def _attach_properties(self, outcome: Any) -> None:
        verdict = outcome.verdict
        props = [("qagate.model", verdict.model), ("qagate.rule", verdict.rule.id),
                 ("qagate.dataset", outcome.dataset.name), ("qagate.status", verdict.status),
                 ("qagate.obtained", verdict.obtained), ("qagate.threshold", verdict.threshold)]
        if verdict.reference_value is not None:
            props.append((f"qagate.{verdict.rule.reference}", verdict.reference_value))
        if verdict.interval is not None:
            props += [("qagate.interval_low", verdict.interval.low),
                      ("qagate.interval_high", verdict.interval.high)]
        if outcome.result is not None:
            props += [(f"qagate.metric.{k}", v) for k, v in sorted(outcome.result.metrics.items())
                      if v is not None]
        self.user_properties.extend(props)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> Any:
        if excinfo.errisinstance((GateFailure, QagateError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = (self.case.rule.line - 1) if self.case.rule.line else None
        return self.path, line, f"{self.case.model}::{self.case.rule.id}"


class GateSkipped(pytest.Item):
    """Stands for a whole gate file whose ``requires:`` paths are missing."""

    def __init__(self, *, reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        pytest.skip(self.reason)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "requires"


def _missing_reason(missing: list[Path]) -> str:
    return ("qagate: gate needs " + ", ".join(str(p) for p in missing)
            + " (missing; see 'requires:' in the gate file)")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Ask for BERTScore only for models a selected rule needs it for (it is expensive)."""
    qsession = session.config.stash.get(SESSION_KEY, None)
    if qsession is None:
        return
    for item in session.items:
        if isinstance(item, GateItem) and item.case.rule.metric == "bertscore_f1":
            qsession.bertscore_models.add((Path(item.models_folder), item.case.model))
            if item.case.rule.reference == "teacher":
                try:
                    teacher = qsession.teacher_name(item.models_folder)
                except QagateError:
                    continue
                qsession.bertscore_models.add((Path(item.models_folder), teacher))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Keep skips and errors of gate items for the summary (verdicts are recorded in runtest)."""
    report = yield
    if isinstance(item, GateItem) and (report.skipped or report.failed):
        from qagate.session import Record

        records = _session(item.config).records
        record = records.get(item.nodeid)
        if record is None or (report.skipped and record.status == "undecided"):
            rule = item.case.rule
            status = "skipped" if report.skipped else "error"
            if record is not None:
                record.status = "undecided (skipped)"
            else:
                records[item.nodeid] = Record(item.nodeid, item.case.model, rule.id, rule.metric,
                                              rule.op, "-", status)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Append this run's gate results to the run history (``--qagate-history``)."""
    config = session.config
    qsession = config.stash.get(SESSION_KEY, None)
    settings = config.stash.get(SETTINGS_KEY, None)
    if (qsession is None or settings is None or settings.history is None or not qsession.records
            or hasattr(config, "workerinput")):   # xdist workers: the controller writes
        return
    from dataclasses import asdict

    from qagate.store import history

    metrics = []
    for name, dataset, result, latency, speedup in qsession.evaluated():
        row = {"model": name, "dataset": dataset, **result.metrics}
        if latency is not None:
            row["seconds_per_question"] = latency.seconds_per_question
        if speedup is not None:
            row["speedup"] = speedup
        metrics.append(row)
    run = history.build_run(
        results=[asdict(record) for record in qsession.records.values()], metrics=metrics,
        started=config.stash.get(STARTED_KEY, time.time()), exit_status=int(exitstatus),
        rootdir=Path(config.rootpath),
        settings={"dataset": _dataset_label(settings, config), "limit": settings.limit, "articles": settings.articles,
                  "models": _rel(settings.models, config), "args": list(config.invocation_params.args)})
    try:
        history.append_run(settings.history, run)
        config.stash[HISTORY_NOTE_KEY] = f"run {run['id']} ({run['outcome']}) appended to {_rel(settings.history, config)}"
    except OSError as exc:
        config.stash[HISTORY_NOTE_KEY] = (f"WARNING: run history not written: {settings.history}: "
                                          f"{exc.strerror or exc} (set --qagate-history to a writable "
                                          "file, or none)")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from qagate.reports import terminal as report

    qsession = config.stash.get(SESSION_KEY, None)
    if qsession is None:
        return
    evaluated = qsession.evaluated()
    records = list(qsession.records.values())
    actions = qsession.baseline_actions
    if not (evaluated or records or actions):
        return
    write = terminalreporter.write_line
    terminalreporter.section("qagate")
    if evaluated:
        rows = [(name, dataset, result.metrics,
                 latency.seconds_per_question if latency is not None else None, speedup)
                for name, dataset, result, latency, speedup in evaluated]
        for line in report.metrics_table(rows).splitlines():
            write(line)
    if records:
        counts: dict[str, int] = {}
        for record in records:
            counts[record.status] = counts.get(record.status, 0) + 1
        write("")
        write("gates: " + ", ".join(f"{n} {report.STATUS_WORDS.get(s, s).lower()}"
                                    for s, n in sorted(counts.items())))
        for line in report.gates_table(records).splitlines():
            write(line)
    for path, action in sorted(actions.items()):
        write(f"{action} baseline {_rel(path, config)}")
    note = config.stash.get(HISTORY_NOTE_KEY, None)
    if note:
        write(f"history: {note}")


def _dataset_label(settings: Settings, config: pytest.Config) -> str:
    """The dataset spec as the user would write it: paths relative to the rootdir."""
    dataset = settings.dataset
    if dataset != "sample" and not dataset.startswith("hf:"):
        dataset = _rel(Path(dataset), config)
    return dataset


def _rel(path: Path, config: pytest.Config) -> str:
    try:
        return str(Path(path).relative_to(config.rootpath))
    except ValueError:
        return str(path)
