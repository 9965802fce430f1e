"""The UI's one error boundary: our errors shown as they are, bugs as a short message, st.rerun untouched."""

from __future__ import annotations

import ast
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[3]


def test_the_ui_has_one_broad_except_and_it_is_the_boundary() -> None:
    broad = []
    for path in [*ROOT.joinpath("pages").rglob("*.py"), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Name) \
                    and node.type.id in ("Exception", "BaseException"):
                broad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert len(broad) == 1 and broad[0].startswith("pages/ui/errors.py:"), broad


def _page() -> None:
    import streamlit as st

    from lib.sessions import InvalidSessionId
    from pages.ui.errors import error_boundary

    with error_boundary() as known:
        raise InvalidSessionId("bad id <x>")
    with error_boundary() as bug:
        raise KeyError("internal detail")
    with error_boundary(show=False) as quiet:
        raise ValueError("kept for the caller")
    st.write(f"known={type(known.error).__name__} bug={type(bug.error).__name__} quiet={type(quiet.error).__name__}")
    if not st.session_state.get("reran"):
        st.session_state["reran"] = True
        with error_boundary():
            st.rerun()  # a BaseException: must reach Streamlit, not the boundary
    st.write("after rerun")


def test_known_errors_are_shown_bugs_are_short_and_rerun_passes_through() -> None:
    at = AppTest.from_function(_page).run(timeout=30)
    assert not at.exception
    shown = [e.value.replace("\\", "") for e in at.error]  # markdown_literal escapes punctuation
    assert len(shown) == 2
    assert "Unexpected error (KeyError)" in shown[1] and "internal detail" not in shown[1]
    assert "known=InvalidSessionId bug=KeyError quiet=ValueError" in [m.value for m in at.markdown]
    assert at.session_state["reran"] is True
    assert "after rerun" in [m.value for m in at.markdown]
