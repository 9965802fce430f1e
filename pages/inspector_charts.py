"""The token inspector's charts (Altair over the pandas frames of lib.inspection and lib.inspection_costs).

Every chart is at least 300 px tall with both axis titles set, and reads the same at 5 turns and at 1,000:
per-turn bars sit on a quantitative axis (so 1,000 turns do not need 1,000 labels), and the frames they
draw are grouped into at most ~150 bars by lib.inspection.error_series / cache_stack_frame.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from lib.inspection import Inspection, error_series, kind_frame
from lib.tokens import count_label

HEIGHT = 320
MANY_POINTS = 60  # above this many turns, lines drop their point marks
OVER, UNDER = "#d8893b", "#3b6fd8"
PART_COLOURS = {"cached": "#2e9d5b", "written": "#d8893b", "uncached": "#9aa5b1"}


def series_labels(data: Inspection, model: str) -> dict[str, str]:
    """Legend names for the per-turn series: each count's label, provider-reported only where it exists."""
    labels = {"estimate": count_label("estimate"),
              "exact": count_label("tiktoken", encoding=data.encoding, model=model)}
    provider = data.turns["provider"].notna()
    if provider.any():
        simulated = bool(data.turns.loc[provider, "provider_simulated"].all())
        labels["provider"] = count_label("simulated" if simulated else "provider")
    return labels


def per_turn_chart(data: Inspection, model: str) -> alt.Chart:
    labels = series_labels(data, model)
    long = data.turns.melt(id_vars=["turn"], value_vars=list(labels), var_name="series", value_name="tokens")
    long = long.dropna(subset=["tokens"])
    long["series"] = long["series"].map(labels)
    return alt.Chart(long).mark_line(point=len(data.turns) <= MANY_POINTS).encode(
        x=alt.X("turn:Q", title="Turn", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("tokens:Q", title="Tokens in the payload"),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=400)),
        # Exact and provider-reported often coincide; dashes keep both lines visible.
        strokeDash=alt.StrokeDash("series:N", legend=None),
        tooltip=["turn:Q", "series:N", "tokens:Q"],
    ).properties(height=HEIGHT, title="Tokens sent per turn")


def _turn_bars(frame: pd.DataFrame) -> pd.DataFrame:
    # Bars from first - 0.4 to last + 0.4 on a quantitative axis: one bar per turn or per group of turns.
    return frame.assign(x0=frame["first"] - 0.4, x1=frame["last"] + 0.4)


def error_chart(data: Inspection) -> alt.LayerChart | alt.FacetChart:
    frame = _turn_bars(error_series(data.turns))
    frame["direction"] = frame["error_pct"].map(lambda e: "over" if e > 0 else "under")
    grouped = bool((frame["first"] != frame["last"]).any())
    bars = alt.Chart(frame).mark_bar().encode(
        x=alt.X("x0:Q", title="Turn", axis=alt.Axis(tickMinStep=1)), x2="x1:Q",
        y=alt.Y("error_pct:Q", title="chars/4 error against exact (%)"),
        color=alt.Color("direction:N", scale=alt.Scale(domain=["over", "under"], range=[OVER, UNDER]),
                        legend=alt.Legend(title="chars/4", orient="bottom")),
        tooltip=[alt.Tooltip("label:N", title="Turns" if grouped else "Turn"),
                 alt.Tooltip("error_pct:Q", title="Error %"), alt.Tooltip("estimate:Q", title="Estimate"),
                 alt.Tooltip("exact:Q", title="Exact")],
    )
    layers: list[alt.Chart] = [bars]
    if grouped:  # whiskers: the smallest and largest single-turn error inside each group
        layers.append(alt.Chart(frame).transform_calculate(mid="(datum.x0 + datum.x1) / 2").mark_rule(
            color="#374151").encode(x="mid:Q", y="low:Q", y2="high:Q"))
    title = "chars/4 error per payload" + (" (groups of turns; whiskers: min and max turn)" if grouped else "")
    return alt.layer(*layers).properties(height=HEIGHT, title=title)


def kind_chart(data: Inspection) -> alt.LayerChart | alt.FacetChart:
    """The lesson in one picture: chars/4 is close for English prose and far off for CJK, code, JSON, emoji."""
    kinds = kind_frame(data.messages)
    per_message = data.messages.dropna(subset=["error_pct"])
    order = list(kinds["kind"])
    x = alt.X("kind:N", title="Kind of text", sort=order, axis=alt.Axis(labelAngle=0))
    bars = alt.Chart(kinds).mark_bar(opacity=0.75).encode(
        x=x, y=alt.Y("error_pct:Q", title="chars/4 error against exact (%)"),
        color=alt.condition("datum.error_pct > 0", alt.value(OVER), alt.value(UNDER)),
        tooltip=[alt.Tooltip("kind:N", title="Kind"), alt.Tooltip("messages:Q", title="Messages"),
                 alt.Tooltip("error_pct:Q", title="Error % (all messages of this kind)"),
                 alt.Tooltip("chars_per_token:Q", title="Characters per token")],
    )
    labels = bars.mark_text(dy=-8, color="#111827").encode(
        text=alt.Text("error_pct:Q", format="+.0f"), color=alt.value("#111827"))
    points = alt.Chart(per_message).mark_circle(size=45, opacity=0.55, color="#111827").encode(
        x=x, y="error_pct:Q", tooltip=[alt.Tooltip("#:Q", title="Message"), "role:N", "preview:N",
                                       alt.Tooltip("error_pct:Q", title="Error %")])
    return alt.layer(bars, labels, points).properties(
        height=HEIGHT, title="chars/4 error per message, by kind (bar: all messages of the kind; dot: one message)")


def cumulative_chart(data: Inspection) -> alt.Chart:
    frame = data.cumulative.rename(columns={"cumulative_sent": "Sent (with trimming)",
                                            "cumulative_untrimmed": "Without trimming"})
    long = frame.melt(id_vars=["turn"], value_vars=["Sent (with trimming)", "Without trimming"],
                      var_name="series", value_name="tokens")
    return alt.Chart(long).mark_line(point=len(frame) <= MANY_POINTS).encode(
        x=alt.X("turn:Q", title="Turn", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("tokens:Q", title="Tokens re-sent so far"),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["turn:Q", "series:N", "tokens:Q"],
    ).properties(height=HEIGHT, title="Cumulative tokens re-sent")


def cache_stack_chart(stack: pd.DataFrame, title: str) -> alt.Chart:
    """Per turn, the payload split into cached (read), written and uncached tokens (simulated)."""
    frame = stack.assign(x0=stack["turn"] - 0.4, x1=stack["last"] + 0.4)
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("x0:Q", title="Turn", axis=alt.Axis(tickMinStep=1)), x2="x1:Q",
        y=alt.Y("tokens:Q", title="Input tokens (simulated)", stack="zero"),
        color=alt.Color("part:N", title=None, sort=list(PART_COLOURS),
                        scale=alt.Scale(domain=list(PART_COLOURS), range=list(PART_COLOURS.values())),
                        legend=alt.Legend(orient="bottom")),
        order=alt.Order("part_order:Q"),
        tooltip=[alt.Tooltip("turn:Q", title="Turn"), alt.Tooltip("part:N", title="Part"),
                 alt.Tooltip("tokens:Q", title="Tokens"), alt.Tooltip("status:N", title="Cache")],
    ).transform_calculate(
        part_order="datum.part == 'cached' ? 0 : datum.part == 'written' ? 1 : 2",
    ).properties(height=HEIGHT, title=title)


def cost_chart(cumulative: pd.DataFrame) -> alt.Chart:
    """Cumulative input cost of the session under each strategy; dashed: caching off."""
    return alt.Chart(cumulative).mark_line().encode(
        x=alt.X("turn:Q", title="Turn", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("cost:Q", title="Input cost so far (US$, simulated)"),
        color=alt.Color("strategy:N", title=None, legend=alt.Legend(orient="bottom", columns=2, labelLimit=300)),
        strokeDash=alt.StrokeDash("caching:N", title="Caching", scale=alt.Scale(domain=["on", "off"],
                                                                                 range=[[1, 0], [5, 3]])),
        tooltip=["turn:Q", "strategy:N", "caching:N", alt.Tooltip("cost:Q", format="$.5f")],
    ).properties(height=HEIGHT + 40, title="Cumulative input cost under each strategy")
