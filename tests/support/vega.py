"""Check a Vega-Lite spec against the schema altair ships (the pages write specs as plain dicts)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from altair.utils.schemapi import validate_jsonschema
from altair.vegalite.v6.schema.core import load_schema


def assert_valid_vega_lite(spec: dict[str, Any] | str) -> None:
    """Raise jsonschema's ValidationError when ``spec`` (a dict, or the JSON a chart element carries) is not
    valid Vega-Lite. Frames attached as datasets are checked as the records Streamlit sends."""
    spec = json.loads(spec) if isinstance(spec, str) else dict(spec)
    datasets = spec.get("datasets") or {}
    spec["datasets"] = {name: frame.head(3).to_dict("records") if isinstance(frame, pd.DataFrame) else frame
                        for name, frame in datasets.items()}
    if not spec["datasets"]:
        spec.pop("datasets")
    validate_jsonschema(json.loads(json.dumps(spec, default=str)), load_schema())
