"""Find score files and load them into `Score` records Verovio can read; music21's corpus as default input."""

from __future__ import annotations

import codecs
import glob
import hashlib
import io
import importlib.util
import logging
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Iterable

from lxml import etree

from deepscores.beams import repair_beams
from deepscores.errors import OptionsError, ScoreError, UnsupportedFormatError

log = logging.getLogger("deepscores.corpus")

# Values are Verovio 'inputFrom' names: we always pass the format explicitly because Verovio's
# sniffing misreads e.g. ABC files that start with a blank line.
SCORE_SUFFIXES: dict[str, str] = {
    ".xml": "musicxml",
    ".musicxml": "musicxml",
    ".mxl": "musicxml",
    ".mei": "mei",
    ".krn": "humdrum",
    ".abc": "abc",
}
_XML_FORMATS = frozenset({"musicxml", "mei"})
# A compressed MusicXML member far beyond any real score is a zip bomb, not music.
_MAX_MXL_MEMBER_BYTES = 256 * 1024 * 1024
_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_XML_DECLARATION_TEXT = re.compile(r"^(<\?xml[^>]*?encoding\s*=\s*[\"'])([A-Za-z0-9._-]+)([\"'])")
_CORPUS_PREFIX = "music21:"
_MUSICXML_ROOTS = ("score-partwise", "score-timewise")


@dataclass(frozen=True)
class Score:
    """One score file, decoded to the text Verovio loads."""

    path: Path
    data: str
    input_from: str
    content_hash: str  # sha256 of the raw file bytes, so renaming a file keeps its id
    #: What load_score changed in `data` to make Verovio draw what the file means, one line each
    #: (e.g. 'closed 37 unterminated beam groups'); empty when `data` is the decoded file as is.
    repairs: tuple[str, ...] = ()

    @property
    def score_id(self) -> str:
        return self.content_hash[:16]


def load_score(path: str | Path, repair: bool = True) -> Score:
    """Read, decode and sanity-check one score file; every failure is one typed `ScoreError`.

    With `repair`, MusicXML beam groups Verovio would drop are made well-formed first (see
    `deepscores.beams`); what was changed is in `Score.repairs`.
    """
    path = Path(path)
    input_from = SCORE_SUFFIXES.get(path.suffix.lower())
    if input_from is None:
        expected = ", ".join(sorted(SCORE_SUFFIXES))
        raise UnsupportedFormatError(path, f"unsupported file type {path.suffix or '(none)'!r}; expected one of {expected}")
    if path.is_dir():
        raise ScoreError(path, "is a directory, not a score file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScoreError(path, "file not found") from None
    except OSError as exc:
        raise ScoreError(path, f"cannot read file: {exc.strerror or exc}") from None
    if not raw.strip():
        raise ScoreError(path, "empty file")

    if path.suffix.lower() == ".mxl":
        text = _decode_xml(path, _read_mxl(path, raw))
    elif input_from in _XML_FORMATS:
        text = _decode_xml(path, raw)
    else:
        text = _decode_text(path, raw)
    if not text.strip():
        raise ScoreError(path, "empty file")
    if input_from in _XML_FORMATS:
        root_tag = _check_xml(path, text)
        if input_from == "musicxml" and root_tag not in _MUSICXML_ROOTS:
            raise ScoreError(path, f"root element <{root_tag}> is not MusicXML (expected <score-partwise> or <score-timewise>)")
    repairs: tuple[str, ...] = ()
    if repair and input_from == "musicxml":
        beams = repair_beams(text)
        text, repairs = beams.text, beams.notes
        if repairs:
            log.info("%s: %s", path, "; ".join(repairs))
    return Score(path=path, data=text, input_from=input_from, content_hash=hashlib.sha256(raw).hexdigest(),
                 repairs=repairs)


def _read_mxl(path: Path, raw: bytes) -> bytes:
    """The bytes of the MusicXML rootfile inside a compressed .mxl archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))  # bytes already read for the hash
    except zipfile.BadZipFile:
        raise ScoreError(path, "not a zip archive (a .mxl must be compressed MusicXML)") from None
    with archive:
        names = archive.namelist()
        member = _container_rootfile(archive, names)
        if member is None:
            member = next(
                (n for n in names if not n.startswith("META-INF/") and n.lower().endswith((".xml", ".musicxml"))),
                None,
            )
        if member is None:
            raise ScoreError(path, "the .mxl archive contains no MusicXML score")
        if archive.getinfo(member).file_size > _MAX_MXL_MEMBER_BYTES:
            raise ScoreError(path, f"archive member {member!r} is implausibly large for a score")
        try:
            return archive.read(member)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            raise ScoreError(path, f"corrupt .mxl archive: {exc}") from None


def _container_rootfile(archive: zipfile.ZipFile, names: list[str]) -> str | None:
    if "META-INF/container.xml" not in names:
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    try:
        root = etree.fromstring(archive.read("META-INF/container.xml"), parser)
    except (etree.XMLSyntaxError, zipfile.BadZipFile, OSError):
        return None  # a broken container is common enough; fall back to scanning members
    for element in root.iter("{*}rootfile", "rootfile"):
        full_path = element.get("full-path")
        if full_path and full_path in names:
            return full_path
    return None


def _decode_xml(path: Path, raw: bytes) -> str:
    """Decode XML bytes by BOM, then by the declared encoding; rewrite the declaration to UTF-8.

    Verovio only reads UTF-8 strings (it fails on UTF-16 MusicXML, which music21's corpus has),
    and lxml refuses str input whose declaration names another encoding.
    """
    if raw.startswith(codecs.BOM_UTF8):
        encoding, raw = "utf-8", raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif raw.startswith(b"<\x00"):
        encoding = "utf-16-le"
    elif raw.startswith(b"\x00<"):
        encoding = "utf-16-be"
    else:
        declared = _XML_DECLARATION.match(raw)
        encoding = declared.group(1).decode("ascii") if declared else "utf-8"
        if encoding.lower().replace("_", "-") in ("utf-16", "utf16"):
            encoding = "utf-8"  # a UTF-16 claim on bytes without a BOM or NULs is a wrong label
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise ScoreError(path, f"unknown character encoding {encoding!r} in the XML declaration") from None
    except UnicodeDecodeError as exc:
        raise ScoreError(path, f"not valid {encoding} text (byte {exc.start}): binary or corrupt file") from None
    text = text.lstrip("\ufeff")
    return _XML_DECLARATION_TEXT.sub(r"\g<1>UTF-8\g<3>", text, count=1)


def _decode_text(path: Path, raw: bytes) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16").lstrip("\ufeff")
        except UnicodeDecodeError:
            raise ScoreError(path, "not valid UTF-16 text despite its byte-order mark") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Old Humdrum and ABC files are often Latin-1; every byte decodes, so check for binary.
        text = raw.decode("latin-1")
    if "\x00" in text:
        raise ScoreError(path, "contains NUL bytes: binary or corrupt file, not a text score")
    return text


def _check_xml(path: Path, text: str) -> str:
    """Reject entity declarations and malformed XML before Verovio sees the text; return the root's local name."""
    # Entity declarations have no legitimate use in MusicXML/MEI and enable expansion attacks.
    if "<!ENTITY" in text:
        raise ScoreError(path, "XML entity declarations are not allowed (possible entity-expansion attack)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    try:
        root = etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "malformed XML"
        raise ScoreError(path, f"malformed XML: {first_line}") from None
    return etree.QName(root).localname


def find_scores(sources: Iterable[str | Path]) -> list[Path]:
    """Expand files, folders (recursively) and glob patterns into a sorted, de-duplicated list of scores."""
    found: dict[Path, Path] = {}
    for source in sources:
        matches = _expand_source(source)
        if not matches:
            raise ScoreError(source, "no score files found")
        for match in matches:
            found.setdefault(match.resolve(), match)
    return sorted(found.values(), key=lambda p: str(p))


def _expand_source(source: str | Path) -> list[Path]:
    path = Path(source)
    if path.is_file():
        if path.suffix.lower() not in SCORE_SUFFIXES:
            expected = ", ".join(sorted(SCORE_SUFFIXES))
            raise UnsupportedFormatError(path, f"unsupported file type {path.suffix or '(none)'!r}; expected one of {expected}")
        return [path]
    if path.is_dir():
        return _scores_under(path)
    if glob.has_magic(str(source)):
        matches: list[Path] = []
        for hit in sorted(glob.glob(str(source), recursive=True)):
            hit_path = Path(hit)
            if hit_path.is_dir():
                matches.extend(_scores_under(hit_path))
            elif _is_score_file(hit_path):
                matches.append(hit_path)
        return matches
    return []


def _scores_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _is_score_file(p) and not _is_hidden(p.relative_to(folder)))


def _is_score_file(path: Path) -> bool:
    return path.suffix.lower() in SCORE_SUFFIXES and path.is_file()


def _is_hidden(relative: Path) -> bool:
    # Editor backups and VCS folders (.git, ._foo.xml from macOS) are never scores.
    return any(part.startswith(".") for part in relative.parts)


@lru_cache(maxsize=1)
def _music21_corpus_root() -> Path | None:
    # find_spec locates the package without importing it (music21's import takes about a second).
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "corpus"


def default_corpus(subset: str | None = None) -> list[Path]:
    """music21's bundled corpus, restricted to formats we read, in a stable corpus-relative order.

    ``subset`` names a top-level corpus folder, e.g. ``'bach'``. The files are listed from the
    package's corpus folder directly: the same files as ``music21.corpus.getPaths()`` without its
    registered local corpora (not part of the reproducible default), and without importing music21,
    which takes longer than listing and ordering the 3,000 files.
    """
    root = _music21_corpus_root()
    if root is None:
        raise OptionsError("music21 is not installed; it provides the default corpus")
    by_name = {path.relative_to(root).as_posix(): path for path in _scores_under(root)}
    if subset is not None:
        folders = sorted({name.split("/", 1)[0] for name in by_name if "/" in name})
        wanted = subset.strip("/")
        if wanted not in folders:
            raise OptionsError(f"unknown corpus subset {subset!r}; valid subsets: {', '.join(folders)}")
        by_name = {name: p for name, p in by_name.items() if name.startswith(wanted + "/")}
    return [by_name[name] for name in sorted(by_name)]


@lru_cache(maxsize=1)
def _resolved_corpus_root() -> Path | None:
    root = _music21_corpus_root()
    return None if root is None else root.resolve()


def corpus_relative_name(path: Path) -> str:
    """A machine-independent name: 'music21:bach/bwv66.6.mxl' for corpus files, else the path as given."""
    path = Path(path)
    # Paths listed by default_corpus lie under the root as written: no need to resolve each one, which
    # costs a look-up per folder of the path (a tenth of a second for the corpus).
    root = _music21_corpus_root()
    if root is not None and path.is_relative_to(root) and ".." not in path.parts:
        return _CORPUS_PREFIX + path.relative_to(root).as_posix()
    root = _resolved_corpus_root()
    if root is not None:
        try:
            return _CORPUS_PREFIX + str(PurePosixPath(path.resolve().relative_to(root)))
        except ValueError:
            pass
    return str(path)
