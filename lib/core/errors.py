"""The one family of errors that lib raises for a user.

Every error a person can act on derives from ``HistoryLabError``; its message says what happened and
what to do. The UI boundary shows this family as it is (``st.error``) and treats anything else as a bug:
logged with its traceback, shown as a short apology. Secrets are masked before any message is shown.
"""

from __future__ import annotations


class HistoryLabError(Exception):
    """Base class: ``str(error)`` is a complete, actionable message for the user."""

    @property
    def user_message(self) -> str:
        from lib.core.secrets import mask_secrets  # late: secrets reads Settings, which may raise ConfigError

        return mask_secrets(str(self))
