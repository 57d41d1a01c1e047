"""The Ray engine on a local Ray cluster: the same bytes as the local engine, a crashing score retried
and then recorded, timeouts cancelled, and an early stop (``--pages N``) that matches the local engine."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import music21
import pytest

from deepscores.pipeline.run import EXIT_SOME_FAILED, GenerateOptions, RunSettings, run_generate
from tests.musicxml import write_tiny_corpus
from tests.test_generate import CRASHING_ABC, tree_digest

# Ray folds similar driver messages into one "[repeated 2x]" line a few seconds later; the retry
# test reads those messages, so they must come one by one. Read by Ray when it is imported.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def address() -> str:
    # One cluster for the whole module: starting Ray costs seconds. The engine sees it is connected
    # and reuses it (and leaves it running).
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> Path:
    folder = write_tiny_corpus(tmp_path_factory.mktemp("scores"))
    shutil.copy(music21.corpus.getWork("bach/bwv66.6"), folder / "bwv66.6.mxl")
    return folder


def generate(sources, out: Path, engine: str, address: str | None = None, **kw):
    options = GenerateOptions(sources=tuple(str(s) for s in sources), seed=5, patches_per_class=3,
                              split=(0.5, 0.25, 0.25), shards_mb=kw.pop("shards_mb", None), pages=kw.pop("pages", None))
    settings = RunSettings(out=out, workers=2, progress=False, engine=engine, address=address, **kw)
    return run_generate(options, settings)


def test_ray_gives_the_local_engines_bytes(scores, address, tmp_path):
    local = generate([scores], tmp_path / "local", "local", shards_mb=0.2)
    distributed = generate([scores], tmp_path / "ray", "ray", address, shards_mb=0.2)
    assert local.exit_code == distributed.exit_code == 0
    assert distributed.pages == local.pages == 4
    assert tree_digest(tmp_path / "ray") == tree_digest(tmp_path / "local")
    assert ray.is_initialized(), "the engine must not shut down a cluster it did not start"


def test_early_stop_with_pages_matches_local(scores, address, tmp_path):
    # --pages 2 stops submitting once the plan's first pages are in; the result is the same set.
    generate([scores], tmp_path / "local", "local", pages=2)
    summary = generate([scores], tmp_path / "ray", "ray", address, pages=2)
    assert summary.pages == 2
    assert tree_digest(tmp_path / "ray") == tree_digest(tmp_path / "local")


def test_resume_on_ray_redoes_only_what_is_missing(scores, address, tmp_path):
    reference = tmp_path / "reference"
    generate([scores], reference, "local")
    out = tmp_path / "ray"
    generate([scores], out, "ray", address)
    # Lose one page's XML, as a kill between its PNGs and its XML would: that score is redone.
    victim = sorted((out / "xml_annotations").glob("*.xml"))[0]
    victim.unlink()
    summary = generate([scores], out, "ray", address, resume=True)
    assert summary.resumed_scores == 3 and summary.exit_code == 0
    assert tree_digest(out) == tree_digest(reference)


def test_crashing_worker_is_retried_then_recorded(scores, address, tmp_path, capfd):
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(CRASHING_ABC, bad / "crash.abc")  # Verovio aborts the whole process on it
    shutil.copy(scores / "triad.musicxml", bad / "good.musicxml")
    shutil.copy(scores / "dots.musicxml", bad / "dots.musicxml")
    summary = generate([bad], tmp_path / "ds", "ray", address)
    assert summary.exit_code == EXIT_SOME_FAILED
    assert [(Path(r.source).name, r.status) for r in summary.failures] == [("crash.abc", "crash")]
    error = summary.failures[0].error
    assert "\n" not in error and "crash.abc" in error and "tried 3 times" in error
    assert summary.scores_ok == 2 and summary.pages == 2
    # The driver cannot see a retry; Ray's own message for each one is the evidence. It comes
    # asynchronously from the raylet.
    seen = ""
    deadline = time.monotonic() + 15
    while not {"1", "2"} <= set(re.findall(r"There are (\d) retries remaining", seen)) and time.monotonic() < deadline:
        time.sleep(0.2)
        captured = capfd.readouterr()
        seen += captured.out + captured.err
    assert {"1", "2"} <= set(re.findall(r"There are (\d) retries remaining", seen)), seen[-2000:]


def test_timeout_cancels_the_task_and_the_run_goes_on(scores, address, tmp_path):
    beethoven = music21.corpus.getWork("beethoven/opus18no1/movement1.mxl")  # 19 pages
    # 1.5 s: the triad needs ~0.2 s on a quiet machine and stays under it on a loaded one; the
    # quartet (parse ~1 s, 19 pages ~2 s) never does.
    summary = generate([beethoven, scores / "triad.musicxml"], tmp_path / "ds", "ray", address, timeout_s=1.5)
    assert [(Path(r.source).name, r.status) for r in summary.failures] == [("movement1.mxl", "timeout")]
    assert summary.pages == 1
    # The cancelled task's worker was killed: it wrote no page the dataset keeps.
    assert len(list((tmp_path / "ds" / "xml_annotations").glob("*.xml"))) == 1
