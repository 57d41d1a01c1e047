"""`generate` end to end: layout, determinism, failures that cost one score, kill + resume."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import music21
import pytest
from pycocotools.coco import COCO

from deepscores.errors import DeepScoresError
from deepscores.pipeline.run import EXIT_SOME_FAILED, GenerateOptions, RunSettings, run_generate, work_estimate
from deepscores.validate import validate_dataset
from tests.musicxml import note, score, write, write_tiny_corpus

CRASHING_ABC = music21.corpus.getWork("airdsAirs/book1.abc")  # aborts Verovio 6.4.1 (std::out_of_range)


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root (except the run's own option record) → sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()
    } | {str(p.relative_to(root)): os.readlink(p) for p in sorted(root.rglob("*")) if p.is_symlink()}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    folder = write_tiny_corpus(tmp_path_factory.mktemp("scores"))
    shutil.copy(music21.corpus.getWork("bach/bwv66.6"), folder / "bwv66.6.mxl")
    shutil.copy(music21.corpus.getWork("bach/bwv269"), folder / "bwv269.mxl")
    return folder


def generate(sources, out: Path, workers: int = 2, **kw) -> object:
    options = GenerateOptions(sources=tuple(str(s) for s in sources), patches_per_class=kw.pop("patches", 4),
                              seed=kw.pop("seed", 7), **{k: v for k, v in kw.items() if k in ("pages", "fonts", "split", "font_mode")})
    settings = RunSettings(out=out, workers=workers, progress=False,
                           **{k: v for k, v in kw.items() if k in ("timeout_s", "resume")})
    return run_generate(options, settings)


def test_layout_and_real_clients(corpus_dir, tmp_path):
    out = tmp_path / "ds"
    summary = generate([corpus_dir], out, split=(0.6, 0.2, 0.2))
    assert summary.exit_code == 0 and summary.scores_ok == 5 and summary.pages == 5
    names = sorted(p.stem for p in (out / "xml_annotations").glob("*.xml"))
    assert len(names) == 5
    for folder in ("images_png", "pix_annotations_png", "instance_png"):
        assert sorted(p.stem for p in (out / folder).glob("*.png")) == names
    # Splits are by score, cover every page once.
    split_pages = {s: (out / "splits" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sorted(sum(split_pages.values(), [])) == names
    assert [len(v) for v in split_pages.values()] == [3, 1, 1]
    # COCO loads in pycocotools with every symbol of the XMLs.
    total = 0
    for split in ("train", "val", "test"):
        coco = COCO(str(out / "coco" / f"{split}.json"))
        assert len(coco.getImgIds()) == len(split_pages[split])
        total += len(coco.getAnnIds())
    assert total == summary.symbols
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["counts"]["pages"] == 5 and meta["counts"]["symbols"] == summary.symbols
    assert (out / "yolo" / "data.yaml").is_file()
    manifest = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert [m["status"] for m in manifest] == ["ok"] * 5
    assert validate_dataset(out) == []


def test_same_inputs_same_bytes(corpus_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate([corpus_dir], a, workers=2)
    generate([corpus_dir], b, workers=1)
    assert tree_digest(a) == tree_digest(b)


def test_failures_cost_one_score_each(corpus_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.musicxml").write_text("")
    (bad / "truncated.xml").write_text(score(note("C", 5))[:200])
    (bad / "bomb.xml").write_text('<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
                                  "<score-partwise>&b;</score-partwise>")
    shutil.copy(CRASHING_ABC, bad / "crash.abc")
    shutil.copy(corpus_dir / "triad.musicxml", bad / "good.musicxml")
    out = tmp_path / "ds"
    summary = generate([bad], out)
    assert summary.exit_code == EXIT_SOME_FAILED
    statuses = {Path(r.source).name: r.status for r in summary.failures}
    assert statuses == {"empty.musicxml": "error", "truncated.xml": "error", "bomb.xml": "error", "crash.abc": "crash"}
    assert all("\n" not in r.error and Path(r.source).name in r.error for r in summary.failures)
    # A crash is retried on a fresh worker, then recorded in the same words as on the Ray engine.
    crash = next(r for r in summary.failures if r.status == "crash")
    assert crash.error.endswith("the engraver process died (tried 3 times)")
    assert summary.pages == 1 and summary.scores_ok == 1


def test_timeout_is_recorded_and_run_goes_on(corpus_dir, tmp_path):
    beethoven = music21.corpus.getWork("beethoven/opus18no1/movement1.mxl")  # 19 pages: seconds, not 0.3 s
    summary = generate([beethoven, corpus_dir / "triad.musicxml"], tmp_path / "ds", timeout_s=0.3, workers=1)
    assert [r.status for r in summary.failures] == ["timeout"]
    assert summary.pages == 1


def test_pages_limit_is_exact_and_deterministic(corpus_dir, tmp_path):
    a = generate([corpus_dir], tmp_path / "a", pages=3, workers=2)
    b = generate([corpus_dir], tmp_path / "b", pages=3, workers=1)
    assert a.pages == b.pages == 3
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_every_font_mode_engraves_each_score_in_each_font(corpus_dir, tmp_path):
    one = corpus_dir / "bwv66.6.mxl"
    generate([one], tmp_path / "a", fonts=("Leipzig", "Petaluma"), font_mode="every", patches=0, workers=1)
    names = (tmp_path / "a" / "splits" / "train.txt").read_text().split() + \
        (tmp_path / "a" / "splits" / "val.txt").read_text().split() + (tmp_path / "a" / "splits" / "test.txt").read_text().split()
    assert sorted(n.rsplit("-", 1)[1] for n in names) == ["leipzig", "petaluma"]  # one page in each font
    assert len({n.rsplit("-", 1)[0] for n in names}) == 1                      # of the same score page
    manifest = [json.loads(line) for line in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    assert [m["font"] for m in manifest] == ["Leipzig,Petaluma"]
    assert validate_dataset(tmp_path / "a") == []
    with pytest.raises(DeepScoresError, match="--font-mode"):
        GenerateOptions(font_mode="each").validate()


def test_sigkill_midway_then_resume_gives_identical_files(tmp_path):
    sources = [music21.corpus.getWork(w) for w in ("bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1",
                                                    "joplin/maple_leaf_rag.mxl", "bach/bwv86.6", "bach/bwv40.8")]
    reference = tmp_path / "reference"
    generate(sources, reference, workers=1)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "deepscores.cli", "generate", *map(str, sources), "--out", str(out),
           "--workers", "1", "--seed", "7", "--patches-per-class", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not manifest.exists() or len(manifest.read_text().splitlines()) < 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the run and its workers
    proc.wait()
    assert not (out / "dataset.json").exists(), "the run finished before it could be killed"
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    digest = tree_digest(out)
    digest.pop(".deepscores-options.json", None)
    ref = tree_digest(reference)
    ref.pop(".deepscores-options.json", None)
    assert digest == ref


def test_split_brings_every_class_to_training_without_emptying_val_or_test():
    from deepscores.pipeline.finalize import split_scores

    scores = [f"s{i:02d}" for i in range(20)]
    plain = split_scores(scores, (0.6, 0.2, 0.2), seed=5)
    assert [list(plain.values()).count(s) for s in ("train", "val", "test")] == [12, 4, 4]
    val = sorted(s for s in scores if plain[s] == "val")
    test = sorted(s for s in scores if plain[s] == "test")
    classes = {s: {"noteheadBlack"} for s in scores}
    classes[test[0]] |= {"fingering1"}            # only in test: moves to train
    classes[val[0]] |= {"arpeggiato"}             # in two val scores, so processed after the one-score classes
    classes[val[1]] |= {"arpeggiato"}
    classes[val[2]] |= {"fermataAbove"}           # one score each: rarest first, and val gives at most
    classes[val[3]] |= {"segno"}                  # half its 4 scores, so these two take val's quota
    split = split_scores(scores, (0.6, 0.2, 0.2), seed=5, classes_of=classes)
    assert split[test[0]] == "train"
    assert split[val[2]] == split[val[3]] == "train"
    assert split[val[0]] == split[val[1]] == "val"   # quota spent: arpeggiato stays out of training
    assert {s for s in scores if split[s] != plain[s]} == {test[0], val[2], val[3]}
    # A class some train score already holds moves nothing.
    assert split_scores(scores, (0.6, 0.2, 0.2), seed=5, classes_of={s: {"gClef"} for s in scores}) == plain


def test_resume_accepts_a_record_without_options_added_later_but_names_a_changed_one(corpus_dir, tmp_path):
    out = tmp_path / "ds"
    tiny = sorted(corpus_dir.glob("*.musicxml"))[:1]
    generate(tiny, out, workers=1)
    record = out / ".deepscores-options.json"
    saved = json.loads(record.read_text())
    del saved["degrade"]  # as written by a version without --degrade
    record.write_text(json.dumps(saved))
    assert generate(tiny, out, workers=1, resume=True).exit_code == 0
    with pytest.raises(DeepScoresError, match="these differ: seed"):
        generate(tiny, out, workers=1, resume=True, seed=8)


def test_work_estimate_reads_an_mxl_by_its_music_not_its_zip(tmp_path):
    """Largest scores go first; a compressed .mxl counts by its uncompressed members, so a long score
    in a small zip is not scheduled after shorter plain files. Unreadable files count as 0."""
    import zipfile

    music = score(*[note("C", 4)] * 400)
    plain = write(tmp_path, score(*[note("C", 4)] * 100), "short.musicxml")
    packed = tmp_path / "long.mxl"
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", "<container/>")
        archive.writestr("long.musicxml", music)
    assert packed.stat().st_size < plain.stat().st_size  # the zip is the smaller file
    assert work_estimate(str(packed)) == len(music.encode()) + len("<container/>")
    assert work_estimate(str(packed)) > work_estimate(str(plain)) == plain.stat().st_size
    broken = tmp_path / "broken.mxl"
    broken.write_bytes(b"not a zip")
    assert work_estimate(str(broken)) == 0 and work_estimate(str(tmp_path / "missing.xml")) == 0


_PAGE_ARRAYS = """
import resource, sys
import numpy as np
from deepscores.pipeline.tasks import keep_page_memory
if sys.argv[1] == "kept" and not keep_page_memory():
    print(-1)
    sys.exit()
def page():  # the arrays of one default page: image, instance map, class mask
    image = np.full((2679, 1894), 255, np.uint8)
    instances = np.zeros((2679, 1894), np.uint16)
    instances.fill(1)
    mask = np.full((2679, 1894), 255, np.uint8)
    return int(image[0, 0]) + int(instances[-1, -1]) + int(mask[5, 5])
page()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    page()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_a_worker_reuses_page_memory_instead_of_faulting_it_in_again():
    def faults(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", _PAGE_ARRAYS, mode], capture_output=True, text=True, check=True)
        return int(done.stdout)

    kept = faults("kept")
    if kept < 0:
        pytest.skip("this C library has no mallopt")
    # 20 pages' arrays: about 1,900 page faults each by default, none once the worker keeps its memory.
    assert faults("default") >= 20_000
    assert kept <= 100
