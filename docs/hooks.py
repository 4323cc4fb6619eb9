"""MkDocs hooks for the qagate site.

- Publish files that the bench scripts write outside docs/ (``bench/pareto.png``), so that the
  pages show the measured figure itself instead of a copy kept by hand.
- Docstrings cross-reference in Sphinx's style (``:class:`Verdict```); mkdocstrings renders the
  role as text, so the role's prefix is dropped and the name stays as code.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

GENERATED = ("bench/pareto.png",)
ROLE = re.compile(r":(?:class|mod|func|meth|attr|data|exc|obj):(?=<code>)")


def on_files(files, config):  # noqa: ANN001, ANN201 - MkDocs' hook signature
    root = Path(config["config_file_path"]).parent
    for name in GENERATED:
        if (root / name).is_file():
            files.append(File(name, str(root), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_content(html, page, config, files):  # noqa: ANN001, ANN201, ARG001 - MkDocs' hook signature
    return ROLE.sub("", html)
