"""What every page adds to Streamlit's own look: readable in both themes, and usable on a narrow screen.

``apply()`` runs once per page run (pages.sidebar.page_setup calls it). It draws nothing visible:
- one style sheet, theme-neutral (every colour here holds 3:1 or better on both themes' backgrounds, or
  takes the theme's own text colour);
- a small script that collapses the sidebar when a page is shown in a window narrower than
  ``SIDEBAR_COLLAPSE_PX``.

Why the script: ``st.set_page_config(initial_sidebar_state="auto")`` collapses the sidebar only up to
Streamlit's "md" breakpoint, 768 px. Between that and about 1,000 px the 300 px sidebar left the chat and
its timeline a third of the screen each. Once collapsed, the sidebar's own button opens it again, and
Streamlit's remembered choice is cleared, so a wider window later starts with the sidebar open.
"""

from __future__ import annotations

import streamlit as st

SIDEBAR_COLLAPSE_PX = 1_000
# A red that holds 3:1 (graphics) against white and against the dark theme's #171614.
TRIM_RED = "#e0403a"

STYLE = f"""<style>
/* The primary colour fills buttons with white text; as text on the page (the slider's value, the open
   tab) the theme's text colour reads better in the dark theme, where no blue suits both uses. */
[data-testid="stSliderThumbValue"] {{ color: inherit !important; }}
[data-baseweb="tab-list"] [aria-selected="true"] p {{ color: inherit; }}
/* Likewise a hovered, focused or pressed secondary or tertiary button keeps the text colour (its border
   or an underline still shows the state). */
:is([data-testid="stBaseButton-secondary"], [data-testid="stBaseButton-tertiary"]):is(:hover, :focus, :active) {{
  color: inherit !important; }}
[data-testid="stBaseButton-tertiary"]:is(:hover, :focus-visible) {{ text-decoration: underline; }}
/* Messages the newest payload did not send: border, tint and the ✂ label; the text keeps full contrast. */
[class*="st-key-chat_dropped_"] {{ border: 2px dashed {TRIM_RED}; border-left: 6px solid {TRIM_RED};
  border-radius: 0.5rem; background: rgba(224, 64, 58, 0.07); padding: 0.25rem 0.5rem; }}
.hl-window-start {{ margin: 0.6rem 0; padding: 0.55rem 0.8rem; border-top: 4px dashed {TRIM_RED};
  background: rgba(224, 64, 58, 0.1); color: inherit; font-size: 1.15rem; font-weight: 700;
  border-radius: 4px; }}
/* Off screen until the keyboard reaches it (pages.style.skip_link). */
.hl-skip-link {{ position: absolute; left: -10000px; }}
.hl-skip-link:focus {{ position: static; display: inline-block; padding: 0.25rem 0.5rem; font-weight: 600;
  outline: 2px solid currentColor; }}
</style>"""

SIDEBAR_SCRIPT = f"""<script>
(() => {{
  // Once per page shown (a load, or a pick in the page list, as Streamlit does on a phone); not on the
  // reruns of a page, so a reader who opens the sidebar to change a setting keeps it open.
  if (window.__hlSidebarChecked === window.location.pathname) return;
  window.__hlSidebarChecked = window.location.pathname;
  if (window.innerWidth >= {SIDEBAR_COLLAPSE_PX}) return;
  let tries = 0;
  const collapse = () => {{  // the sidebar may be drawn a moment after this script runs
    const button = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (!button) {{ if (++tries < 50) setTimeout(collapse, 100); return; }}
    if (button.getAttribute('aria-expanded') === 'false') return;
    button.click();
    // Streamlit remembers a click as the reader's choice; this one was not, so forget it.
    Object.keys(window.localStorage).filter((k) => k.startsWith('stSidebarCollapsed-'))
      .forEach((k) => window.localStorage.removeItem(k));
  }};
  collapse();
}})();
</script>"""


def apply() -> None:
    """The style sheet and the narrow-screen sidebar script (neither takes room on the page)."""
    st.html(STYLE)
    st.html(SIDEBAR_SCRIPT, unsafe_allow_javascript=True)


SKIP_LINK = """<a href="#" class="hl-skip-link">Skip to the message box</a>
<script>
(() => {
  if (window.__hlSkipLink) return;  // one listener per page load, however often the link is drawn
  window.__hlSkipLink = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a.hl-skip-link');
    if (!link) return;
    event.preventDefault();
    document.querySelector('[data-testid="stChatInputTextArea"]')?.focus();
  });
})();
</script>"""


def skip_link() -> None:
    """A "Skip to the message box" link, first in the sidebar: a keyboard user reaches the chat input in a
    few Tab presses instead of tabbing through the sidebar and every turn drawn (78 stops in a filled chat).
    Hidden until focused."""
    st.html(SKIP_LINK, unsafe_allow_javascript=True)
