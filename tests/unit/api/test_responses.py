"""The API's JSON bodies: compact, masked, and valid JSON even when a figure is not finite."""

from __future__ import annotations

import json
import math

from lib.api.responses import dumps


def test_non_finite_numbers_become_null_anywhere_in_the_body():
    body = {"cost": math.nan, "usage": {"rate": math.inf, "list": [1.5, -math.inf, (math.nan,)]}, "ok": 2.0}
    assert json.loads(dumps(body)) == {"cost": None, "usage": {"rate": None, "list": [1.5, None, [None]]}, "ok": 2.0}


def test_a_finite_body_is_compact_json_with_key_shapes_masked():
    body = {"reply": "use sk-abcdefgh12345678 please", "n": [1, 2.5], "text": "é"}
    assert dumps(body) == '{"reply":"use *** please","n":[1,2.5],"text":"é"}'
