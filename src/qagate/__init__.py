"""qagate: a pytest plugin that gates the release of distilled question-answering models."""

__version__ = "0.1.0"

from qagate.errors import QagateError  # noqa: E402  (standard library only)

__all__ = ["QagateError", "__version__"]
