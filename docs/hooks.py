"""MkDocs hook: publish files that the bench scripts write outside docs/ (``bench/pareto.png``),
so that the pages show the measured figure itself instead of a copy kept by hand."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

GENERATED = ("bench/pareto.png",)


def on_files(files, config):  # noqa: ANN001, ANN201 - MkDocs' hook signature
    root = Path(config["config_file_path"]).parent
    for name in GENERATED:
        if (root / name).is_file():
            files.append(File(name, str(root), config["site_dir"], config["use_directory_urls"]))
    return files
