"""The plugin's fixtures: the settings, the dataset, each declared model, evaluations, latencies.

All session-scoped and thin: the work happens in the session (built once, cached), and heavy
libraries load only when a fixture is first used. ``qagate.pytest_plugin.hooks`` imports them, which is
what registers them with pytest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from qagate.core.errors import QagateError
from qagate.pytest_plugin.collect import session_of
from qagate.pytest_plugin.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from qagate.pytest_plugin.session import QagateSession


@pytest.fixture(scope="session")
def qagate_settings(pytestconfig: pytest.Config) -> Settings:
    """The validated ``--qagate-*`` options and ``qagate_*`` ini values (a frozen Settings)."""
    return session_of(pytestconfig).settings


@pytest.fixture(scope="session")
def qagate_dataset(pytestconfig: pytest.Config) -> Any:
    """The session's dataset (``--qagate-dataset``, limit, seed, articles), loaded once."""
    return _fixture_call(lambda: session_of(pytestconfig).dataset())


@pytest.fixture(scope="session")
def qagate_models(pytestconfig: pytest.Config) -> list:
    """Every model declaration (ModelSpec) in the models folder, sorted by name."""
    return _fixture_call(lambda: list(session_of(pytestconfig).specs()))


@pytest.fixture(scope="session")
def qa_model(request: pytest.FixtureRequest) -> Any:
    """Each declared model in turn (a test using it runs once per model; ids = model names)."""
    name = getattr(request, "param", None)
    if name is None:
        pytest.fail(
            "qa_model is parametrised by the qagate plugin; request it from a test "
            "function, not from another fixture",
            pytrace=False,
        )
    return _fixture_call(lambda: session_of(request.config).model(name))


@pytest.fixture(scope="session")
def teacher(pytestconfig: pytest.Config) -> Any:
    """The model declared with ``role: teacher`` (exactly one), built once per session."""
    session = session_of(pytestconfig)
    return _fixture_call(lambda: session.model(session.teacher_name()))


@pytest.fixture(scope="session")
def students(pytestconfig: pytest.Config) -> list:
    """The models declared with ``role: student``, in name order, built once per session."""
    session = session_of(pytestconfig)
    return _fixture_call(
        lambda: [session.model(spec.name) for spec in session.specs() if spec.role == "student"]
    )


@pytest.fixture(scope="session")
def qagate_eval(pytestconfig: pytest.Config):
    """Factory ``qagate_eval(model_or_name, dataset=None, bertscore=False) -> EvalResult``.

    Each model is evaluated once per session per dataset; predictions come from the on-disk
    cache (``--qagate-cache``) when weights, tokenizer, dataset and engine settings are unchanged.
    ``dataset`` is a dataset spec such as ``"sample"`` or a path (default: the session's).
    """
    session = session_of(pytestconfig)

    def evaluate(model: Any, dataset: str | None = None, *, bertscore: bool = False) -> Any:
        __tracebackhide__ = True
        return _fixture_call(
            lambda: session.evaluation(
                _model_name(session, model), request=_request(session, dataset), bertscore=bertscore or None
            )
        )

    return evaluate


@pytest.fixture(scope="session")
def qagate_latency(pytestconfig: pytest.Config):
    """Factory ``qagate_latency(model_or_name) -> Timing``, rounds timed in this session.

    Timed on ``--qagate-timing-questions`` questions drawn across the dataset's articles
    (seeded); never cached across runs, because timings do not carry across runs or machines.
    """
    session = session_of(pytestconfig)

    def latency(model: Any, dataset: str | None = None) -> Any:
        __tracebackhide__ = True
        return _fixture_call(
            lambda: session.latency(_model_name(session, model), request=_request(session, dataset))
        )

    return latency


def _model_name(session: "QagateSession", model: Any) -> str:
    name = model if isinstance(model, str) else getattr(model, "name", None)
    if not isinstance(name, str):
        raise QagateError(f"expected a model or a model name, got {model!r}")
    session.spec(name)  # a clear error for names that are not declared
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
