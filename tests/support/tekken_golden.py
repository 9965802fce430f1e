"""Write tests/support/tekken_golden.json: token ids and chat-payload counts from mistral-common itself, the
reference the bundled Tekken encoding (lib/data/encodings/tekken_240718.tiktoken) is tested against.

mistral-common is not a dependency of History Lab (see README, "More tokenizers"); to regenerate, run this
with an interpreter that has it, e.g.  uv run --with mistral-common==1.13.1 python tests/support/tekken_golden.py
"""

from __future__ import annotations

import json
from pathlib import Path

from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, ToolMessage, UserMessage
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.protocol.instruct.tool_calls import Function, FunctionCall, Tool, ToolCall
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

OUT = Path(__file__).with_name("tekken_golden.json")
TEXTS = [
    "Hello there",
    "The quick brown fox jumps over the lazy dog.",
    "人工智能正在改变我们的生活方式。",
    "東京は日本の首都です。ひらがなとカタカナ。",
    'def trim(messages, budget):\n    while total(messages) > budget:\n        del messages[1]\n',
    '{"city": "Zürich", "unit": "celsius"}',
    "🎉🚀 Launch day! 👩‍💻 🙌🔥✨",
    "Mixed    spaces\n\n\nand\ttabs, 12345 numbers; punctuation!?",
]
WEATHER = {"type": "object", "properties": {"city": {"type": "string", "description": "City name."}},
           "required": ["city"]}


def conversations() -> list[tuple[str, list[dict], list[dict]]]:
    """(name, messages as History Lab stores them, tools as neutral {name, description, parameters})."""
    call = {"id": "abcdefghi", "type": "function", "function": {"name": "get_weather",
                                                                "arguments": '{"city": "Lisbon"}'}}
    return [
        ("one user", [{"role": "user", "content": "Hello there"}], []),
        ("system and turns", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                              {"role": "assistant", "content": "Hello! How can I help?"},
                              {"role": "user", "content": "What is 2+2?"}], []),
        ("cjk and code", [{"role": "system", "content": "你是一个助手"},
                          {"role": "user", "content": TEXTS[2]}, {"role": "assistant", "content": TEXTS[4]},
                          {"role": "user", "content": TEXTS[6]}], []),
        ("tool call and result", [{"role": "user", "content": "Weather in Lisbon?"},
                                  {"role": "assistant", "content": None, "tool_calls": [call]},
                                  {"role": "tool", "tool_call_id": "abcdefghi", "content": '{"forecast": "sunny"}'},
                                  {"role": "assistant", "content": "Sunny, 21 °C."},
                                  {"role": "user", "content": "Thanks!"}],
         [{"name": "get_weather", "description": "Get the weather.", "parameters": WEATHER}]),
    ]


def mistral_message(m: dict):
    if m["role"] == "system":
        return SystemMessage(content=m["content"])
    if m["role"] == "user":
        return UserMessage(content=m["content"])
    if m["role"] == "tool":
        return ToolMessage(content=m["content"], tool_call_id=m["tool_call_id"])
    calls = [ToolCall(id=c["id"], function=FunctionCall(name=c["function"]["name"],
                                                        arguments=c["function"]["arguments"]))
             for c in m.get("tool_calls") or []]
    return AssistantMessage(content=m["content"], tool_calls=calls or None)


def main() -> None:
    tokenizer = MistralTokenizer.v3(is_tekken=True)
    raw = tokenizer.instruct_tokenizer.tokenizer
    texts = [{"text": t, "ids": raw.encode(t, bos=False, eos=False)} for t in TEXTS]
    chats = []
    for name, messages, tools in conversations():
        request = ChatCompletionRequest(messages=[mistral_message(m) for m in messages],
                                        tools=[Tool(function=Function(**t)) for t in tools] or None)
        chats.append({"name": name, "messages": messages, "tools": tools,
                      "tokens": len(tokenizer.encode_chat_completion(request).tokens)})
    OUT.write_text(json.dumps({"tokenizer": "tekken_240718 (MistralTokenizer.v3(is_tekken=True))",
                               "num_special_tokens": raw.num_special_tokens, "texts": texts, "chats": chats},
                              ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
