"""`generate`: plan the scores, run them on an engine, keep the manifest, resume, and finish the dataset.

The manifest (``manifest.jsonl``, one line per score) is the run's memory: a line is appended the
moment a score's files are complete, so a killed run loses at most the scores in flight, and
``--resume`` redoes exactly those. Everything that depends on the whole set (which pages are in,
splits, COCO, YOLO, patches, ``dataset.json``) is rebuilt from the manifest and the page XMLs at
the end, in plan order, so the result does not depend on timing, engine or number of workers.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from deepscores.classes import load_catalogue
from deepscores.classes_v2 import V2_VOCABULARIES
from deepscores.corpus import corpus_relative_name, default_corpus, find_scores
from deepscores.engrave import FONTS
from deepscores.errors import FontError, OptionsError
from deepscores.formats.atomic import atomic_write_text, remove_temp_files
from deepscores.pipeline.finalize import finalize_dataset
from deepscores.pipeline.balance import balance
from deepscores.pipeline.quota import Acceptance, Caps, collection_of
from deepscores.synthetic import balancing_batch, synthetic_sources
from deepscores.pipeline.tasks import (
    DEGRADE_FILES,
    FONT_MODES,
    FULL_INSTANCE_FILES,
    PAGE_FILES,
    ScoreResult,
    ScoreTask,
    is_page_complete,
    remove_page_files,
    stable_hash,
)

MANIFEST = "manifest.jsonl"
#: Output formats `GenerateOptions.formats` may name.
FORMATS = ("deepscores", "obb-anns", "coco", "yolo")
#: Exit status of a run in which some scores failed (0: all good).
EXIT_SOME_FAILED = 3
_PAGE_NAME_RE = re.compile(r"^[0-9a-f]{16}-p\d{3,}-[a-z]+$")


@dataclass(frozen=True)
class GenerateOptions:
    """Everything that decides a dataset's bytes; saved in ``dataset.json``."""

    sources: tuple[str, ...] = ()
    corpus: str | None = None          # 'music21' or 'music21:<folder>' when no sources are given
    pages: int | None = None           # stop after this many pages
    fonts: tuple[str, ...] = FONTS
    #: 'score': each score in one font drawn from (seed, score); 'every': each score in every font of
    #: ``fonts`` (a score's pages ×len(fonts); all of them in the score's split).
    font_mode: str = "score"
    dpi: float | None = None
    unit: float = 9.0
    seed: int = 0
    patches_per_class: int = 3000
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    classes: str = "deepscores"
    # [scale] WebDataset tar shards of about this many MB (10^6 bytes) each; None: no shards.
    shards_mb: float | None = None
    #: Which derived formats finalize writes (the page files are always written): 'deepscores'
    #: (splits, dataset.json; always on), 'coco', 'yolo', 'obb-anns' (DeepScoresV2 release layout).
    formats: tuple[str, ...] = ("deepscores", "coco", "yolo")
    #: Scan/photo-like pages: 'none', a built-in preset (light, scan, photo) or a preset file path.
    degrade: str = "none"
    #: Diversity caps of a sample (``pages``; pipeline/quota.py): pages per score (per font), and the
    #: share of the pages one collection or one font may have. 0 turns a cap off.
    max_pages_per_score: int = 10
    max_collection_share: float = 0.2
    max_font_share: float = 0.3
    #: Composed scores (compose/) added to the plan; with corpus 'synthetic' the plan holds only these.
    synthetic: int = 0
    #: Balance: after the plan, composed scores aimed at the classes still below this count are added
    #: until every producible class has it or the pages run out (pipeline/balance.py). 0: off.
    min_per_class: int = 0
    #: With ``min_per_class``: the share of the pages left to the balancing rounds.
    balance_share: float = 0.5

    def validate(self) -> None:
        for font in self.fonts:
            if font not in FONTS:
                raise FontError(f"unknown music font {font!r}; valid fonts: {', '.join(FONTS)}")
        if not self.fonts:
            raise OptionsError("at least one font is needed")
        if self.font_mode not in FONT_MODES:
            raise OptionsError(f"--font-mode must be one of {', '.join(FONT_MODES)}, got {self.font_mode!r}")
        if self.pages is not None and self.pages < 1:
            raise OptionsError(f"--pages must be at least 1, got {self.pages}")
        if len(self.split) != 3 or any(r < 0 for r in self.split) or abs(sum(self.split) - 1) > 1e-6:
            raise OptionsError(f"--split needs three non-negative fractions summing to 1, got {self.split}")
        load_catalogue(self.classes)  # an unknown vocabulary fails here, naming the available ones
        if self.patches_per_class < 0:
            raise OptionsError("--patches-per-class must be >= 0")
        if self.corpus is not None and not self.corpus.startswith("music21") and self.corpus != "synthetic":
            raise OptionsError(f"unknown corpus {self.corpus!r}; use music21, music21:<folder> or synthetic")
        if self.corpus == "synthetic" and self.pages is None and self.synthetic < 1:
            raise OptionsError("--corpus synthetic needs --pages N or --synthetic K (how much music to compose)")
        for name, value, kind in (("--max-pages-per-score", self.max_pages_per_score, int),
                                  ("--synthetic", self.synthetic, int), ("--min-per-class", self.min_per_class, int)):
            if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
                raise OptionsError(f"{name} must be a whole number >= 0, got {value!r}")
        for name, share in (("--max-collection-share", self.max_collection_share),
                            ("--max-font-share", self.max_font_share), ("--balance-share", self.balance_share)):
            if not (isinstance(share, (int, float)) and 0 <= share <= 1):
                raise OptionsError(f"{name} must be a fraction between 0 and 1 (0: no cap), got {share!r}")
        if self.min_per_class and self.pages is None:
            raise OptionsError("--min-per-class needs --pages N: the page budget the balancing may fill")
        # [scale] shards: a positive, finite size (NaN fails both comparisons, so it is refused too).
        if self.shards_mb is not None and not (0 < self.shards_mb < float("inf")):
            raise OptionsError(f"--shards must be a positive size in MB, got {self.shards_mb}")
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise OptionsError(f"unknown --format {', '.join(map(repr, unknown)) or '(none given)'}; "
                               f"valid formats: {', '.join(FORMATS)}")
        if "obb-anns" in self.formats and self.classes not in V2_VOCABULARIES:
            raise OptionsError(f"--format obb-anns needs --classes {' or '.join(sorted(V2_VOCABULARIES))}, "
                               f"not {self.classes!r}")
        self.preset()  # a bad preset file fails here, naming the file and the key

    @property
    def full_instances(self) -> bool:
        """Whether pages get full-extent masks, oriented boxes and ink areas (`annotate`'s
        ``full_instances``): the obb_anns export needs them, and so does COCO with a v2 vocabulary,
        whose annotations carry ``o_bbox`` and a ``segmentation``."""
        return "obb-anns" in self.formats or ("coco" in self.formats and self.classes in V2_VOCABULARIES)

    @property
    def instance_rle(self) -> bool:
        """Whether pages also get an ``instance_rle/`` sidecar (formats/rle.py). Only the COCO
        ``segmentation`` reads it: the obb_anns export takes its areas from the XML, so a run
        without COCO skips the encoding (a fifth of a v2 page's cost)."""
        return self.full_instances and "coco" in self.formats

    def caps(self, plan: list[str] = ()) -> Caps:
        """The sample's caps (pipeline/quota.py): only a sample (``pages``) is capped. A share cap
        is never below an equal share: with k collections in ``plan`` (k fonts), 1/k of the pages."""
        if self.pages is None:
            return Caps()
        plan_pages = self.pages - math.floor(self.balance_share * self.pages) if self.min_per_class else None
        collections = {collection_of(source) for source in plan} - {None}
        fonts = 1 if self.font_mode == "every" else len(self.fonts)
        return Caps(self.pages, self.max_pages_per_score or None,
                    max(self.max_collection_share, 1 / max(1, len(collections))) if self.max_collection_share else None,
                    max(self.max_font_share, 1 / fonts) if self.max_font_share else None, plan_pages)

    def preset(self):
        """The degradation preset (degrade.presets.Preset), or None for clean pages."""
        if self.degrade == "none":
            return None
        from deepscores.degrade import require

        require()
        from deepscores.degrade.presets import load_preset

        return load_preset(self.degrade)


@dataclass(frozen=True)
class RunSettings:
    """How the run is executed; changes nothing in the output."""

    out: Path
    workers: int = os.cpu_count() or 1
    timeout_s: float | None = 300.0
    memory_limit_mb: int | None = 4096
    resume: bool = False
    engine: str = "local"
    address: str | None = None
    progress: bool = True


@dataclass
class GenerateSummary:
    out: Path
    pages: int = 0
    symbols: int = 0
    scores_ok: int = 0
    failures: list[ScoreResult] = field(default_factory=list)
    class_counts: Counter = field(default_factory=Counter)
    unmapped: Counter = field(default_factory=Counter)
    duplicates_removed: int = 0
    seconds: float = 0.0
    #: Of which the finishing step (splits, COCO, YOLO, patches, shards, dataset.json).
    finish_seconds: float = 0.0
    resumed_scores: int = 0
    #: With --min-per-class: producible classes still below the minimum when the pages ran out.
    deficits: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.failures else 0


def plan_sources(options: GenerateOptions) -> list[str]:
    """The score files in plan order: sorted, or a seeded shuffle when only N pages are wanted.
    Composed scores (``--synthetic K``, ``--corpus synthetic``) are named ``synthetic:…`` sources."""
    if options.sources:
        paths = find_scores(options.sources)
    elif options.corpus == "synthetic":
        paths = []
    else:
        subset = options.corpus.split(":", 1)[1] if options.corpus and ":" in options.corpus else None
        paths = default_corpus(subset)
    names = {str(p): corpus_relative_name(p) for p in paths}
    composed = options.synthetic or (options.pages or 0 if options.corpus == "synthetic" else 0)
    names.update((s, s) for s in synthetic_sources(options.seed, 0, composed))
    ordered = sorted(names)
    if options.pages is not None:
        # Shuffle by name, not by path, so the same corpus gives the same sample on any machine.
        ordered.sort(key=lambda p: (stable_hash("order", options.seed, names[p]), names[p]))
    return ordered


def read_manifest(out: Path) -> dict[str, ScoreResult]:
    results: dict[str, ScoreResult] = {}
    path = out / MANIFEST
    if not path.is_file():
        return results
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            result = ScoreResult.from_json(json.loads(line))
        except (ValueError, TypeError):
            continue  # a line torn by a kill mid-write: that score is simply redone
        results[result.source] = result
    return results


def _options_record(options: GenerateOptions) -> dict:
    return json.loads(json.dumps(asdict(options)))


def _check_out_dir(options: GenerateOptions, settings: RunSettings) -> None:
    out = settings.out
    record = out / ".deepscores-options.json"
    if settings.resume:
        if record.is_file():
            # An option added after the run started is absent from its record: at its default it
            # changes nothing, so a dataset made by an older version still resumes.
            defaults = _options_record(GenerateOptions())
            saved = {**defaults, **json.loads(record.read_text())}
            current = _options_record(options)
            changed = sorted(k for k in current if saved.get(k) != current[k])
            if changed:
                raise OptionsError(f"{out}: --resume needs the same options as the run that started it "
                                   f"({record}); these differ: {', '.join(changed)}")
    elif (out / MANIFEST).exists():
        raise OptionsError(f"{out}: already holds a dataset; pass --resume to continue it or choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for folder in PAGE_FILES:
        (out / folder).mkdir(exist_ok=True)
    if options.instance_rle:
        for folder in FULL_INSTANCE_FILES:
            (out / folder).mkdir(exist_ok=True)
    if options.degrade != "none":
        for folder in DEGRADE_FILES:
            (out / folder).mkdir(exist_ok=True)
    atomic_write_text(record, json.dumps(_options_record(options), sort_keys=True, indent=1) + "\n")
    # Temp files and staged folders of a killed run are never part of the dataset.
    for folder in [out, *(out / f for f in {**PAGE_FILES, **FULL_INSTANCE_FILES, **DEGRADE_FILES})]:
        remove_temp_files(folder)


def _done(result: ScoreResult | None, out: Path, instance_rle: bool, degrade: bool = False) -> bool:
    if result is None:
        return False
    return result.status != "ok" or all(is_page_complete(out, p.name, instance_rle, degrade) for p in result.pages)


def run_generate(
    options: GenerateOptions,
    settings: RunSettings,
    on_progress: Callable[[ScoreResult, int], None] | None = None,
) -> GenerateSummary:
    """Build (or resume) the dataset described by ``options`` in ``settings.out``."""
    start = time.monotonic()
    options.validate()
    plan = plan_sources(options)
    _check_out_dir(options, settings)
    out = settings.out
    preset = options.preset()
    planned = set(plan)
    # Balancing rounds' scores are not in the plan: a resumed run makes the same rounds again.
    results = {s: r for s, r in read_manifest(out).items()
               if (s in planned or balancing_batch(s)) and _done(r, out, options.instance_rle, preset is not None)}
    summary = GenerateSummary(out, resumed_scores=len(results))
    caps = options.caps(plan)
    engine = None
    manifest = open(out / MANIFEST, "a", encoding="utf-8")
    # Pages made so far, for the progress bar: kept as a count (a sum over all results per result
    # would cost a run of 100,000 scores minutes of the driver's time).
    pages_done = sum(len(r.pages) for r in results.values() if r.status == "ok")

    def run_sources(sources: list[str], acceptance: Acceptance) -> list[str]:
        """Make the scores of ``sources`` the acceptance still needs; return its accepted prefix."""
        nonlocal engine

        def tasks():
            todo = [s for s in sources if s not in results]
            if options.pages is None:
                # Largest files first, so no long score starts last and leaves one core idle at the
                # end. Only scheduling changes: the dataset is assembled in plan order.
                todo.sort(key=lambda s: -work_estimate(s))
            for source in todo:
                if source not in results:
                    yield ScoreTask(source, str(out), options.fonts, options.seed, options.dpi, options.unit,
                                    acceptance.pages_needed_at_most(source), options.classes,
                                    settings.memory_limit_mb, options.full_instances, preset, options.font_mode,
                                    options.instance_rle)

        def on_result(result: ScoreResult) -> bool:
            nonlocal pages_done
            manifest.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
            manifest.flush()
            results[result.source] = result
            pages_done += len(result.pages) if result.status == "ok" else 0
            if on_progress is not None:
                on_progress(result, pages_done)
            return not acceptance.final()

        if not acceptance.final():
            engine = engine or make_engine(settings)
            engine.run(tasks(), on_result)
        return acceptance.prefix()[0]

    try:
        accepted = run_sources(plan, Acceptance(plan, results, caps))
        if options.min_per_class:
            def run_batch(batch: list[str], room: int) -> list[str]:
                return run_sources(batch, Acceptance(batch, results, replace(caps, pages=room, plan_pages=None)))

            accepted, summary.deficits = balance(accepted, results, caps, load_catalogue(options.classes),
                                                 options.min_per_class, options.seed, run_batch)
    finally:
        manifest.close()
    finish_start = time.monotonic()
    finalize_dataset(out, options, plan, accepted, results, summary, workers=settings.workers)
    summary.finish_seconds = time.monotonic() - finish_start
    summary.seconds = time.monotonic() - start
    return summary


def work_estimate(path: str) -> int:
    """How much music a score file holds, to schedule the largest first: its size, and for a compressed
    MusicXML (.mxl) the uncompressed size of its members, read from the zip's directory. A 140 KB .mxl
    can hold 7 MB of MusicXML (54 pages), more than a 600 KB .xml; by file size alone it started late
    and left one worker alone at the end."""
    try:
        if path.lower().endswith(".mxl"):
            with zipfile.ZipFile(path) as archive:
                return sum(member.file_size for member in archive.infolist())
        return os.path.getsize(path)
    except (OSError, zipfile.BadZipFile, ValueError):
        return 0  # unreadable: the worker says why, in the manifest


def make_engine(settings: RunSettings):
    # [scale] an address with the local engine is a mistake the user should hear about.
    if settings.address is not None and settings.engine != "ray":
        raise OptionsError(f"--address is only used by --engine ray, not by {settings.engine!r}")
    if settings.engine == "local":
        from deepscores.pipeline.local import LocalEngine

        return LocalEngine(settings.workers, settings.timeout_s, settings.memory_limit_mb)
    # [scale] the Ray engine; Ray is an optional extra, so it is imported only when asked for.
    if settings.engine == "ray":
        try:
            from deepscores.pipeline.ray_engine import RayEngine
        except ImportError as exc:
            raise OptionsError(f"--engine ray needs Ray ({exc}); install it with: pip install 'deepscores[ray]'") from None
        return RayEngine(settings.workers, settings.timeout_s, settings.memory_limit_mb, settings.address)
    raise OptionsError(f"unknown engine {settings.engine!r}; available: local, ray")


def remove_stray_pages(out: Path, keep: set[str]) -> int:
    """Delete page files that are not part of the final dataset (extra pages, scores past the prefix)."""
    removed = 0
    for folder, suffix in {**PAGE_FILES, **FULL_INSTANCE_FILES, **DEGRADE_FILES}.items():
        for path in (out / folder).glob(f"*{suffix}"):
            name = path.name[: -len(suffix)]
            if _PAGE_NAME_RE.match(name) and name not in keep:
                remove_page_files(out, name)
                removed += 1
    return removed
