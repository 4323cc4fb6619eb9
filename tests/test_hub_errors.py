"""A hub id that must be downloaded and cannot be fails at once, in one line (issue 28 item 3):
huggingface_hub on its own retries for about a minute, printing every try."""

from __future__ import annotations

import time

import pytest

from qagate.core.errors import QagateError
from qagate.inference.model_files import ensure_hub_reachable, hub_snapshot


@pytest.fixture
def hub(monkeypatch):
    constants = pytest.importorskip("huggingface_hub.constants")
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return constants


def test_offline_mode_names_the_variable(hub, monkeypatch):
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        QagateError, match="org/model is not in the local hub cache and HF_HUB_OFFLINE is set"
    ):
        ensure_hub_reachable("org/model")


def test_a_hub_that_does_not_answer_fails_in_seconds_with_the_offline_hint(hub, monkeypatch):
    monkeypatch.setattr(hub, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    started = time.monotonic()
    with pytest.raises(QagateError) as info:
        ensure_hub_reachable("org/model", timeout=2.0)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "cannot download org/model: the model hub (127.0.0.1:9) does not answer" in message
    assert "HF_HUB_OFFLINE=1" in message and "\n" not in message


def test_behind_a_proxy_the_download_tries_for_itself(hub, monkeypatch):
    monkeypatch.setattr(hub, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    ensure_hub_reachable("org/model")  # no probe, no error: the proxy may reach the hub


def test_a_model_not_in_the_cache_is_never_downloaded_when_the_hub_is_down(hub, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hub, "ENDPOINT", "http://127.0.0.1:9")
    downloads = []
    with pytest.raises(QagateError, match="does not answer"):
        hub_snapshot("org/not-cached", None, lambda: downloads.append(1))
    assert downloads == []
