"""History Lab: `uv run streamlit run app.py` serves the pages and the HTTP API from one process.

This file plays two parts:
- Imported by `streamlit run` (which finds ``app = st.App(...)`` and hands it to uvicorn) or run as
  `python app.py`: it builds the server, with the Host check, which refuses foreign Host headers on every
  request, the websocket at /_stcore/stream included; the /api routes (lib.api), served past the pages'
  own middleware (lib.api.dispatch); and the
  lifespan: at startup it sets TCP_NODELAY on the listening socket (lib.api.listener: without it every
  request on a reused connection waits ~40 ms), and its shutdown (SIGTERM, Ctrl-C) releases the embedded
  Valkey.
- Run by Streamlit as the app script for every browser session (and by AppTest): it wires the page
  list together (st.navigation). The shared sidebar and the services built once per process live in
  pages/ui/services.py and pages/ui/sidebar.py; each page starts with ``sidebar.page_setup()``, which draws the
  sidebar. (Drawn here, around ``page.run()``, AppTest would drop it on every rerun that names a page.)

Both parts read settings the same way (environment, then .streamlit/secrets.toml) and share one store.
"""

from __future__ import annotations

import gc

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lib import services as lib_services
from lib.api import api_first_middleware, host_middleware, nodelay_lifespan
from lib.tokens import preload as preload_encodings
from pages.ui import services

# (script, title, icon, url path): each page opens at /<url path> (bookmarks and shared links use it); the
# default page opens at "/".
PAGES = [
    ("pages/lesson.py", "Lesson", "🎓", "lesson"),
    ("pages/chat.py", "Chat", "💬", "chat"),
    ("pages/inspector.py", "Token inspector", "🔍", "inspector"),
    ("pages/compare.py", "Compare providers", "⚖️", "compare"),
    ("pages/sessions.py", "Sessions", "🗂️", "sessions"),
]
DEFAULT_PAGE = "pages/chat.py"
GC_FIRST_THRESHOLD = 50_000  # the server's; see below


def run_pages() -> None:
    st.set_page_config(page_title="History Lab", page_icon="🧪", layout="wide", initial_sidebar_state="auto")
    # The Lesson comes first in the navigation; the Chat stays the page at "/" (links and bookmarks open it).
    pages = [st.Page(path, title=title, icon=icon, url_path=url_path, default=path == DEFAULT_PAGE)
             for path, title, icon, url_path in PAGES]
    st.navigation(pages).run()


if get_script_run_ctx(suppress_warning=True) is None:
    # The server: this module was imported to find `app` (no script is running yet).
    # The pages' heavy imports (pandas) happen here, at start, not on the first page load. What is
    # imported by now lives as long as the server: freezing it keeps it out of every later full
    # collection, which then walks only the sessions and pages (over one bench/pages.py run, full
    # collections took 0.32 s in all instead of 0.83 s).
    import lib.views.inspection  # noqa: F401
    import lib.views.timeline  # noqa: F401

    gc.collect()
    gc.freeze()
    # A turn at 2,000 messages allocates tens of thousands of dicts (the history's copies, the payload, the
    # request body), so with Python's default first threshold (700 allocations) the collector ran several
    # times per turn and walked the cached histories each time it reached the older generations: about
    # 4 ms per turn on average at 2,000 messages (bench/vs_seed.py). Almost nothing here is cyclic garbage
    # (reference counting frees the rest), so collecting every 50,000 allocations costs little memory.
    gc.set_threshold(GC_FIRST_THRESHOLD, *gc.get_threshold()[1:])
    preload_encodings()
    # The page scripts live in pages/, next to this file, and Streamlit reads such a folder as an old-style
    # multipage app: until some session has run st.navigation (which switches that mode off for the whole
    # process), a direct link such as /sessions ran pages/sessions.py on its own, without this file, under
    # a navigation listing the file names ("app", "chat", ...). The navigation is this file's st.navigation
    # alone, from the first request on; st.navigation sets this same flag.
    PagesManager.uses_pages_directory = False
    # The Host check first, on every route; then /api goes to the API application, past the pages' middleware.
    app = st.App("app.py", middleware=[host_middleware(services.settings), api_first_middleware(services.settings)],
                 lifespan=nodelay_lifespan(lib_services.lifespan))
    if __name__ == "__main__":
        app.run()
else:
    run_pages()
