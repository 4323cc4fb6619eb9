"""qagate: a pytest plugin that gates the release of distilled question-answering models."""

__version__ = "0.1.0"

# Standard library only below: importing qagate must stay light (see tests/test_collect_is_light.py).
from qagate.assertions import assert_gate  # noqa: E402
from qagate.core.errors import QagateError  # noqa: E402

__all__ = ["QagateError", "__version__", "assert_gate"]
