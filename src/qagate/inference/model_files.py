"""The files of a model folder: which determine its outputs, their content hashes, and the
parameter count read from safetensors headers. Standard library only (no torch), so a
fingerprint or a prediction-cache hit never loads a model."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt")
# Files that describe a model but do not change its outputs.
_NOT_HASHED = {"README.md", ".gitattributes", "LICENSE", "LICENSE.txt", "NOTICE"}

# (path, size, mtime_ns) -> sha256: a weights file is hashed once per process.
_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """Content hash of a file, memoised by (path, size, modification time)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]


def model_files(folder: Path) -> list[Path]:
    """The files of a model folder that determine its outputs (weights, config, tokenizer)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name not in _NOT_HASHED and not p.name.endswith(".md")
    )


def safetensors_parameter_count(files: Sequence[Path]) -> int:
    """Parameters stored in safetensors files, read from their headers (no torch needed)."""
    total = 0
    for path in files:
        with path.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
        for key, entry in header.items():
            if key != "__metadata__":
                count = 1
                for dim in entry["shape"]:
                    count *= dim
                total += count
    return total
