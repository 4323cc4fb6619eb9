"""The files of a model folder: which determine its outputs, their content hashes, and the
parameter count read from safetensors headers. Standard library only (no torch), so a
fingerprint or a prediction-cache hit never loads a model."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from qagate.core.errors import QagateError

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


def hub_snapshot(source: str, revision: str | None, download: Callable[[], object]) -> Path:
    """The hub cache's folder of the hub id ``source``; when it is not cached yet, ``download()``
    (the adapter's transformers loaders) fetches it, after :func:`ensure_hub_reachable`."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, revision=revision, local_files_only=True))
    except Exception:
        ensure_hub_reachable(source)
    download()
    return Path(snapshot_download(source, revision=revision, local_files_only=True))


def ensure_hub_reachable(source: str, timeout: float = 3.0) -> None:
    """One line, at once, when ``source`` must be downloaded and cannot be: offline mode, or a hub
    that does not answer (huggingface_hub would retry for about a minute, printing each try).
    Behind a proxy (``HTTPS_PROXY`` and friends) the download is left to try for itself."""
    from huggingface_hub import constants

    hint = "set HF_HUB_OFFLINE=1 to use the local hub cache only, or point 'source' at a model folder"
    if constants.HF_HUB_OFFLINE:
        raise QagateError(
            f"{source} is not in the local hub cache and HF_HUB_OFFLINE is set",
            hint="download it once where the hub is reachable, or point 'source' at a model folder",
        )
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    url = urlsplit(constants.ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise QagateError(
            f"cannot download {source}: the model hub ({host}:{port}) does not answer ({reason})",
            hint=hint,
        ) from None
