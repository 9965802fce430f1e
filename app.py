"""History Lab: `uv run streamlit run app.py`.

The entry point only wires the page list together (st.navigation). The shared sidebar and the services
built once per process (st.cache_resource) live in pages/common.py;
each page starts with ``common.page_setup()``, which draws the sidebar. (Drawn here, around
``page.run()``, AppTest would drop it on every rerun that names a page.)
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="History Lab", page_icon="🧪", layout="wide")

PAGES = [
    st.Page("pages/chat.py", title="Chat", icon="💬", default=True),
    st.Page("pages/inspector.py", title="Token inspector", icon="🔍"),
    st.Page("pages/compare.py", title="Compare providers", icon="⚖️"),
    st.Page("pages/sessions.py", title="Sessions", icon="🗂️"),
]

st.navigation(PAGES).run()
