"""Lesson: the seed's tutorial, chapter by chapter, each chapter live and needing no key.

The chapters' words and figures come from lib.chat.lesson (which plays lib.chat.example's script, the one "Play the
example" plays on the Chat page); pages.ui.lesson_sessions draws chapters 1-4 and pages.ui.lesson_trimming 5-6.
Session-state keys start with ``lesson_``.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from lib.chat import CHAPTERS
from pages.ui import errors, lesson_sessions, lesson_trimming, sidebar

CHAPTER_KEY = "lesson_chapter"
DRAW: dict[str, Callable[[], None]] = {
    "resend": lesson_sessions.resend, "memory": lesson_sessions.memory, "redis": lesson_sessions.redis,
    "routes": lesson_sessions.routes, "trimming": lesson_trimming.trimming, "server": lesson_trimming.server_side,
}


def go_to(index: int) -> None:
    st.session_state[CHAPTER_KEY] = max(0, min(len(CHAPTERS) - 1, index))


sidebar.page_setup()
st.title("Lesson: how a chat keeps its history")
index = int(st.session_state.get(CHAPTER_KEY, 0))
chapter = CHAPTERS[index]
st.caption(f"Chapter {index + 1} of {len(CHAPTERS)}. Every figure is computed as you watch, by the same code the "
           "chat and the API run, with the offline teaching model: no key needed.")
st.header(chapter.title)
st.markdown(chapter.text)
lesson_sessions.show_kept_error()
with errors.error_boundary():
    DRAW[chapter.key]()
back, forward = st.columns(2)
if index > 0:
    back.button(f"Back: {CHAPTERS[index - 1].title}", key="lesson_back", icon=":material/arrow_back:",
                on_click=go_to, args=(index - 1,))
if index + 1 < len(CHAPTERS):
    forward.button(f"Next: {CHAPTERS[index + 1].title}", key="lesson_next", type="primary",
                   icon=":material/arrow_forward:", on_click=go_to, args=(index + 1,))
elif forward.button("Next: try it yourself in the Chat", key="lesson_to_chat", type="primary",
                    icon=":material/arrow_forward:"):
    st.switch_page("pages/chat.py")
