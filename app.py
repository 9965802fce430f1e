"""History Lab: `uv run streamlit run app.py`.

The entry point only wires things together: the page list (st.navigation), the shared sidebar, and the
services built once per process (in pages/common.py, with st.cache_resource).
"""

from __future__ import annotations

import streamlit as st

from lib.config import use_shared_tiktoken_cache
from pages import common

# Before anything counts tokens: the machines without network read encodings from ../shared.
use_shared_tiktoken_cache()

st.set_page_config(page_title="History Lab", page_icon="🧪", layout="wide")

PAGES = [
    st.Page("pages/chat.py", title="Chat", icon="💬", default=True),
    st.Page("pages/inspector.py", title="Token inspector", icon="🔍"),
    st.Page("pages/compare.py", title="Compare providers", icon="⚖️"),
    st.Page("pages/sessions.py", title="Sessions", icon="🗂️"),
]

page = st.navigation(PAGES)
try:
    common.render_sidebar()
except Exception as exc:  # noqa: BLE001 - the one error boundary turns it into a message
    common.show_error(exc)
    st.stop()
common.show_notices()
page.run()
