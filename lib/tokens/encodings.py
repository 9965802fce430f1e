"""tiktoken encodings, loaded once per process: the bundled files first, a download only for the others.

The official cl100k_base and o200k_base files ship in ``lib/data/encodings/`` so exact counts work on a
machine with no network and no ``TIKTOKEN_CACHE_DIR``. Each file is checked against the SHA-256 that
tiktoken itself pins (``tiktoken_ext.openai_public``) before it is parsed, so a damaged or swapped file is
refused rather than producing wrong counts. Other encodings (r50k_base, p50k_base, ...) still go through
``tiktoken.get_encoding``, which may download; that download has no timeout of its own, so it runs in a
daemon thread we can give up on. A count never starts a thread: the loaded Encoding is kept in a dict.
"""

from __future__ import annotations

import base64
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tiktoken
from tiktoken.load import check_hash

from lib.core import HistoryLabError

ENCODINGS_DIR = Path(__file__).resolve().parents[1] / "data" / "encodings"
# tiktoken's download has no timeout; on a machine with no network it can block forever.
LOAD_TIMEOUT_SECONDS = 15.0

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class BundledEncoding:
    """What tiktoken_ext.openai_public builds for one encoding, minus the URL (a test checks they agree)."""

    name: str
    sha256: str
    pat_str: str
    special_tokens: dict[str, int]

    file: str = ""  # the bundled file holding the ranks; the encoding's own name when empty

    @property
    def path(self) -> Path:
        return ENCODINGS_DIR / f"{self.file or self.name}.tiktoken"


BUNDLED: dict[str, BundledEncoding] = {
    "cl100k_base": BundledEncoding(
        name="cl100k_base",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501 - tiktoken's pattern, verbatim
        special_tokens={_ENDOFTEXT: 100257, _FIM_PREFIX: 100258, _FIM_MIDDLE: 100259, _FIM_SUFFIX: 100260,
                        _ENDOFPROMPT: 100276},
    ),
    "o200k_base": BundledEncoding(
        name="o200k_base",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str="|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}


# o200k_harmony (gpt-oss) is o200k_base's ranks and pattern with more special tokens, as tiktoken builds it.
_HARMONY_SPECIALS = {
    **BUNDLED["o200k_base"].special_tokens,
    "<|startoftext|>": 199998, "<|endoftext|>": 199999, "<|reserved_200000|>": 200000,
    "<|reserved_200001|>": 200001, "<|return|>": 200002, "<|constrain|>": 200003, "<|reserved_200004|>": 200004,
    "<|channel|>": 200005, "<|start|>": 200006, "<|end|>": 200007, "<|message|>": 200008,
    "<|reserved_200009|>": 200009, "<|reserved_200010|>": 200010, "<|reserved_200011|>": 200011,
    "<|call|>": 200012,
} | {f"<|reserved_{i}|>": i for i in range(200013, 201088)}
BUNDLED["o200k_harmony"] = BundledEncoding("o200k_harmony", BUNDLED["o200k_base"].sha256,
                                           BUNDLED["o200k_base"].pat_str, _HARMONY_SPECIALS, file="o200k_base")
# Mistral's Tekken tokenizer (Mistral NeMo, Ministral 8B, Mistral Small 24.09), Apache-2.0: the first 130,072
# ranks of tekken_240718.json as shipped in the mistral-common 1.13.1 wheel (SHA-256 eccd1665...), written
# in the .tiktoken format (lib/data/encodings/README.md says how). mistral-common itself builds a
# tiktoken.Encoding from exactly these ranks and this pattern, with no special tokens in it (its control
# tokens, [INST] and the like, are ids below 1,000 that it adds by hand), so counts are the same.
BUNDLED["tekken_240718"] = BundledEncoding(
    "tekken_240718", "64a081edb3cbb8639a4eea9a7135ab9a0467c50676c672b217ba655f4d50e127",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+""",  # noqa: E501 - Mistral's pattern, verbatim
    {},
)


class EncodingUnavailable(HistoryLabError, RuntimeError):
    """A tiktoken encoding could not be loaded (a damaged bundled file, or no network for another one)."""

    def __init__(self, name: str, reason: str) -> None:
        self.encoding_name = name
        self.reason = reason
        if name in BUNDLED:
            advice = (f"The file {BUNDLED[name].path} ships with History Lab; restore it from the repository "
                      "(git checkout) to get exact counts again.")
        else:
            cache = os.environ.get("TIKTOKEN_CACHE_DIR") or "(unset)"
            advice = (f"Set TIKTOKEN_CACHE_DIR to a folder holding the encoding file (now: {cache}), "
                      "or allow one download from openaipublic.blob.core.windows.net.")
        super().__init__(f"The tiktoken encoding {name!r} could not be loaded ({reason}). {advice} "
                         "Estimates (chars/4) still work.")


_loaded: dict[str, tiktoken.Encoding] = {}
_failures: dict[str, str] = {}
_load_lock = threading.Lock()


def load_encoding(name: str) -> tiktoken.Encoding:
    """The encoding, loaded at most once per process; EncodingUnavailable instead of hanging or crashing."""
    encoding = _loaded.get(name)  # the hot path: a dict lookup, no lock, no thread
    if encoding is not None:
        return encoding
    with _load_lock:
        if name in _loaded:
            return _loaded[name]
        if name in _failures:
            raise EncodingUnavailable(name, _failures[name])
        try:
            encoding = _load_bundled(BUNDLED[name]) if name in BUNDLED else _download(name)
        except EncodingUnavailable as exc:
            _failures[name] = exc.reason
            raise
        _loaded[name] = encoding
        return encoding


def preload(names: tuple[str, ...] = ("o200k_base", "cl100k_base", "tekken_240718")) -> threading.Thread:
    """Load bundled encodings in a background thread (the server does this at start): the first page
    that counts tokens would otherwise wait about half a second per encoding. A failure is remembered as
    it would be on first use, and reported by the page that needs the encoding."""
    def load() -> None:
        for name in names:
            try:
                load_encoding(name)
            except EncodingUnavailable:
                pass

    worker = threading.Thread(target=load, name="history-lab-encodings", daemon=True)
    worker.start()
    return worker


def loaded_encoding(name: str) -> tiktoken.Encoding | None:
    """The encoding if this process already holds it (never loads, never raises)."""
    return _loaded.get(name)


def reset_encodings() -> None:
    """Forget loaded encodings and failures (tests; or after fixing TIKTOKEN_CACHE_DIR without a restart)."""
    with _load_lock:
        _loaded.clear()
        _failures.clear()


def _load_bundled(spec: BundledEncoding) -> tiktoken.Encoding:
    try:
        data = spec.path.read_bytes()
    except OSError as exc:
        raise EncodingUnavailable(spec.name, f"cannot read the bundled file: {exc}") from exc
    # Checked here, on the bytes we parse, rather than through tiktoken's load_tiktoken_bpe: its
    # read_file_cached would copy the 3.6 MB file into TIKTOKEN_CACHE_DIR (or a temp folder) and, keyed by
    # path, could answer from a stale copy there instead of the file in the repository.
    if not check_hash(data, spec.sha256):
        raise EncodingUnavailable(spec.name, f"the bundled file {spec.path.name} fails its SHA-256 check")
    ranks = _parse_ranks(data)
    return tiktoken.Encoding(spec.name, pat_str=spec.pat_str, mergeable_ranks=ranks,
                             special_tokens=spec.special_tokens)


def _parse_ranks(data: bytes) -> dict[bytes, int]:
    """The .tiktoken format, as tiktoken.load.load_tiktoken_bpe reads it: one "base64-token rank" per line."""
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _download(name: str) -> tiktoken.Encoding:
    result: dict[str, Any] = {}

    def load() -> None:
        try:
            result["encoding"] = tiktoken.get_encoding(name)
        except BaseException as exc:  # noqa: BLE001 - any failure means "not available"
            result["error"] = exc

    # A daemon thread lets us give up on a download that never answers; only real downloads get one.
    worker = threading.Thread(target=load, name=f"tiktoken-{name}", daemon=True)
    worker.start()
    worker.join(LOAD_TIMEOUT_SECONDS)
    if "encoding" in result:
        encoding: tiktoken.Encoding = result["encoding"]
        return encoding
    reason = "timed out" if worker.is_alive() else f"{type(result['error']).__name__}: {result['error']}"
    raise EncodingUnavailable(name, reason)
