"""The token inspector's charts: Vega-Lite specs (plain dicts) over the pandas frames of lib.views.inspection and
lib.views.inspection_costs, drawn with ``st.vega_lite_chart``.

Plain dicts, not Altair: Altair validates every ``encode`` and ``to_dict`` against the Vega-Lite schema, which
cost the server about half a second per page load (profiled: 0.9 s of a 1.7 s run at 10 messages). Each spec
names its frames in ``datasets``; Streamlit sends them to the browser as Arrow.

Every chart is at least 300 px tall with both axis titles set, and reads the same at 5 turns and at 5,000:
per-turn bars sit on a quantitative axis (so 1,000 turns do not need 1,000 labels), and the frames they
draw are grouped into at most ~150 bars by lib.views.inspection.error_series / cache_stack_frame. Lines and dots
are thinned by lib.views.paging.thin to at most MAX_TURNS turns / MAX_DOTS messages: the browser spent
seconds drawing 40,000 points of a 10,000-message session. Every chart comes back with the note its caption
must show when it was thinned; "" means every point is drawn.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lib.tokens import count_label
from lib.views import Inspection, error_series, kind_frame, thin

Spec = dict[str, Any]
Figure = tuple[Spec, str]  # a Vega-Lite spec and its sampling note ("" when nothing was left out)

HEIGHT = 320
MANY_POINTS = 60  # above this many turns, lines drop their point marks
MAX_TURNS = 500  # turns drawn per line series
MAX_DOTS = 1_000  # per-message dots drawn in the kind chart
OVER, UNDER = "#d8893b", "#3b6fd8"
INK = "#111827"
PART_COLOURS = {"cached": "#2e9d5b", "written": "#d8893b", "uncached": "#9aa5b1"}


def _q(field: str, title: str | None = None, **more: Any) -> Spec:
    """A quantitative field (title None: Vega-Lite's default, the field name)."""
    return {"field": field, "type": "quantitative", **({"title": title} if title is not None else {}), **more}


def _n(field: str, title: str | None = None, **more: Any) -> Spec:
    return {"field": field, "type": "nominal", **({"title": title} if title is not None else {}), **more}


def _turn_x(field: str = "turn") -> Spec:
    return _q(field, "Turn", axis={"tickMinStep": 1})


def _chart(datasets: dict[str, pd.DataFrame], *, title: str, height: int = HEIGHT, **body: Any) -> Spec:
    # The first dataset is the chart's own data; layers may name another.
    return {"datasets": datasets, "data": {"name": next(iter(datasets))}, "height": height, "title": title, **body}


def series_labels(data: Inspection, model: str) -> dict[str, str]:
    """Legend names for the per-turn series: each count's label, provider-reported only where it exists."""
    labels = {"estimate": count_label("estimate"),
              "exact": count_label("tiktoken", encoding=data.encoding, model=model)}
    provider = data.turns["provider"].notna()
    if provider.any():
        simulated = bool(data.turns.loc[provider, "provider_simulated"].all())
        labels["provider"] = count_label("simulated" if simulated else "provider")
    return labels


def per_turn_chart(data: Inspection, model: str) -> Figure:
    labels = series_labels(data, model)
    drawn = thin(data.turns, "turn", max_points=MAX_TURNS)
    long = drawn.frame.melt(id_vars=["turn"], value_vars=list(labels), var_name="series", value_name="tokens")
    long = long.dropna(subset=["tokens"])
    long["series"] = long["series"].map(labels)
    spec = _chart({"per_turn": long}, title="Tokens sent per turn",
                  mark={"type": "line", "point": len(drawn.frame) <= MANY_POINTS}, encoding={
                      "x": _turn_x(), "y": _q("tokens", "Tokens in the payload"),
                      "color": _n("series", None, legend={"orient": "bottom", "labelLimit": 400, "title": None}),
                      # Exact and provider-reported often coincide; dashes keep both lines visible.
                      "strokeDash": _n("series", legend=None),
                      "tooltip": [_q("turn"), _n("series"), _q("tokens")]})
    return spec, drawn.note("turn")


def _turn_bars(frame: pd.DataFrame) -> pd.DataFrame:
    # Bars from first - 0.4 to last + 0.4 on a quantitative axis: one bar per turn or per group of turns.
    return frame.assign(x0=frame["first"] - 0.4, x1=frame["last"] + 0.4)


def error_chart(data: Inspection) -> Figure:
    """Grouped, never thinned: above 150 turns each bar is a group's error, whiskers its extremes."""
    frame = _turn_bars(error_series(data.turns))
    frame["direction"] = frame["error_pct"].map(lambda e: "over" if e > 0 else "under")
    grouped = bool((frame["first"] != frame["last"]).any())
    bars = {"mark": "bar", "encoding": {
        "x": _turn_x("x0"), "x2": {"field": "x1"},
        "y": _q("error_pct", "chars/4 error against exact (%)"),
        "color": _n("direction", scale={"domain": ["over", "under"], "range": [OVER, UNDER]},
                    legend={"title": "chars/4", "orient": "bottom"}),
        "tooltip": [_n("label", "Turns" if grouped else "Turn"), _q("error_pct", "Error %"),
                    _q("estimate", "Estimate"), _q("exact", "Exact")]}}
    layers: list[Spec] = [bars]
    if grouped:  # whiskers: the smallest and largest single-turn error inside each group
        layers.append({"transform": [{"calculate": "(datum.x0 + datum.x1) / 2", "as": "mid"}],
                       "mark": {"type": "rule", "color": "#374151"},
                       "encoding": {"x": _q("mid"), "y": _q("low"), "y2": {"field": "high"}}})
    title = "chars/4 error per payload" + (" (groups of turns; whiskers: min and max turn)" if grouped else "")
    return _chart({"errors": frame}, title=title, layer=layers), ""


def kind_chart(data: Inspection) -> Figure:
    """The lesson in one picture: chars/4 is close for English prose and far off for CJK, code, JSON, emoji.

    The bars use every message; the dots are thinned to MAX_DOTS messages (the note says so)."""
    kinds = kind_frame(data.messages)
    dots = thin(data.messages.dropna(subset=["error_pct"]), "#", max_points=MAX_DOTS)
    per_message = dots.frame[["#", "role", "kind", "preview", "error_pct"]]
    x = _n("kind", "Kind of text", sort=list(kinds["kind"]), axis={"labelAngle": 0})
    y = _q("error_pct", "chars/4 error against exact (%)")
    bars = {"mark": {"type": "bar", "opacity": 0.75}, "encoding": {
        "x": x, "y": y,
        "color": {"condition": {"test": "datum.error_pct > 0", "value": OVER}, "value": UNDER},
        "tooltip": [_n("kind", "Kind"), _q("messages", "Messages"),
                    _q("error_pct", "Error % (all messages of this kind)"),
                    _q("chars_per_token", "Characters per token")]}}
    labels = {"mark": {"type": "text", "dy": -8, "color": INK}, "encoding": {
        "x": x, "y": y, "text": _q("error_pct", format="+.0f"), "color": {"value": INK}}}
    points = {"data": {"name": "messages"}, "mark": {"type": "circle", "size": 45, "opacity": 0.55, "color": INK},
              "encoding": {"x": x, "y": _q("error_pct"), "tooltip": [
                  _q("#", "Message"), _n("role"), _n("preview"), _q("error_pct", "Error %")]}}
    spec = _chart({"kinds": kinds, "messages": per_message}, layer=[bars, labels, points],
                  title="chars/4 error per message, by kind (bar: all messages of the kind; dot: one message)")
    note = dots.note("message", subject="Dots sampled for drawing")
    return spec, note and f"{note} The bars use every message."


def cumulative_chart(data: Inspection) -> Figure:
    drawn = thin(data.cumulative, "turn", max_points=MAX_TURNS)
    read = "Read by the model (sent + re-read by the server)"
    frame = drawn.frame.rename(columns={"cumulative_sent": "Sent (with trimming)",
                                        "cumulative_untrimmed": "Without trimming", "cumulative_read": read})
    series = ["Sent (with trimming)", "Without trimming"]
    if "server_kept" in data.turns and data.turns["server_kept"].any():
        series.append(read)  # server-side history: small requests, but the server re-reads and bills the rest
    long = frame.melt(id_vars=["turn"], value_vars=series, var_name="series", value_name="tokens")
    spec = _chart({"cumulative": long}, title="Cumulative tokens re-sent",
                  mark={"type": "line", "point": len(frame) <= MANY_POINTS}, encoding={
                      "x": _turn_x(), "y": _q("tokens", "Tokens re-sent so far"),
                      "color": _n("series", None, legend={"orient": "bottom", "title": None}),
                      "tooltip": [_q("turn"), _n("series"), _q("tokens")]})
    return spec, drawn.note("turn")


def cache_stack_chart(stack: pd.DataFrame, title: str) -> Figure:
    """Per turn, the payload split into cached (read), written and uncached tokens (simulated); grouped into
    at most ~150 bars by lib.views.inspection_costs.cache_stack_frame, never thinned."""
    frame = stack.assign(x0=stack["turn"] - 0.4, x1=stack["last"] + 0.4)
    spec = _chart({"cache_stack": frame}, title=title, mark="bar",
                  transform=[{"calculate": "datum.part == 'cached' ? 0 : datum.part == 'written' ? 1 : 2",
                              "as": "part_order"}],
                  encoding={
                      "x": _turn_x("x0"), "x2": {"field": "x1"},
                      "y": _q("tokens", "Input tokens (simulated)", stack="zero"),
                      "color": _n("part", None, sort=list(PART_COLOURS),
                                  scale={"domain": list(PART_COLOURS), "range": list(PART_COLOURS.values())},
                                  legend={"orient": "bottom", "title": None}),
                      "order": _q("part_order"),
                      "tooltip": [_q("turn", "Turn"), _n("part", "Part"), _q("tokens", "Tokens"),
                                  _n("status", "Cache")]})
    return spec, ""


def cost_chart(cumulative: pd.DataFrame) -> Figure:
    """Cumulative input cost of the session under each strategy; dashed: caching off."""
    drawn = thin(cumulative, "turn", max_points=MAX_TURNS)
    spec = _chart({"costs": drawn.frame}, title="Cumulative input cost under each strategy", height=HEIGHT + 40,
                  mark="line", encoding={
                      "x": _turn_x(), "y": _q("cost", "Input cost so far (US$, simulated)"),
                      "color": _n("strategy", None, legend={"orient": "bottom", "columns": 2, "labelLimit": 300,
                                                            "title": None}),
                      "strokeDash": _n("caching", "Caching", scale={"domain": ["on", "off"],
                                                                    "range": [[1, 0], [5, 3]]}),
                      "tooltip": [_q("turn"), _n("strategy"), _n("caching"), _q("cost", format="$.5f")]})
    return spec, drawn.note("turn")
