"""The third exact family: Mistral's Tekken, bundled and hash-checked, counts exactly what mistral-common counts
(token ids of texts, and whole chat payloads in Mistral's v3 template), offline; labels say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.context import trim_history
from lib.core import ToolDef
from lib.tokens import (
    COMPARED_ENCODINGS,
    choose_encoding,
    count_chat_tokens,
    count_label,
    count_tool_tokens,
    load_encoding,
    summarize,
)
from lib.tokens import encodings as encodings_module

GOLDEN = json.loads((Path(__file__).parents[2] / "support" / "tekken_golden.json").read_text(encoding="utf-8"))
MODEL = "open-mistral-nemo-2407"


def test_texts_tokenize_to_mistral_commons_own_ids():
    tekken = load_encoding("tekken_240718")
    offset = GOLDEN["num_special_tokens"]  # mistral-common numbers its control tokens first
    for case in GOLDEN["texts"]:
        assert [t + offset for t in tekken.encode_ordinary(case["text"])] == case["ids"], case["text"]


@pytest.mark.parametrize("case", GOLDEN["chats"], ids=lambda c: c["name"])
def test_chat_payloads_count_what_mistral_commons_template_counts(case):
    tools = [ToolDef(**t) for t in case["tools"]]
    assert count_chat_tokens(case["messages"], MODEL) + count_tool_tokens(tools, MODEL) == case["tokens"]
    # The trimmer counts the same payload the same way (framing, <s> once, the tools held first).
    messages = [{**m, "id": f"m{n}"} for n, m in enumerate(case["messages"])]
    trim = trim_history(messages, 100_000, model=MODEL, tool_tokens=count_tool_tokens(tools, MODEL))
    assert trim.tokens_after == case["tokens"] and trim.counter == "tekken_240718"


def test_tekken_models_are_labelled_exact_by_the_one_decider():
    for model in ("open-mistral-nemo-2407", "mistral-nemo", "mistral-nemo:12b", "mistralai/Mistral-Nemo-Instruct-2407",
                  "ministral-8b-2410", "mistral-small-2409"):
        choice = choose_encoding(model)
        assert (choice.name, choice.approximate, choice.family) == ("tekken_240718", False, "mistral"), model
    assert count_label("tiktoken", model="mistral-nemo") == "exact (Mistral Tekken, tekken_240718)"
    # Mistral models on another tokenizer stay approximate: only the bundled family is exact.
    assert choose_encoding("mistral").approximate and choose_encoding("mistral-large-2411").approximate


def test_the_token_view_compares_three_families_and_the_file_is_hash_checked(tmp_path, monkeypatch):
    assert COMPARED_ENCODINGS == ("cl100k_base", "o200k_base", "tekken_240718")
    summary = summarize("Hello there, 漢字 🎉")
    assert set(summary.counts) == set(COMPARED_ENCODINGS) and all(summary.counts.values())
    damaged = tmp_path / "tekken_240718.tiktoken"
    damaged.write_bytes(encodings_module.BUNDLED["tekken_240718"].path.read_bytes()[:-10])
    monkeypatch.setattr(encodings_module, "ENCODINGS_DIR", tmp_path)
    encodings_module.reset_encodings()
    try:
        with pytest.raises(encodings_module.EncodingUnavailable, match="SHA-256"):
            load_encoding("tekken_240718")
    finally:
        monkeypatch.undo()
        encodings_module.reset_encodings()
