"""Translation of the engine's user-facing messages (log lines, errors, the HTML report).

GNU gettext, standard library only (the QGIS plugin imports this module at load time, before any of the
engine's heavy packages may be installed). English is the default; the QGIS plugin calls
:func:`set_language` with the QGIS user locale at start, a script may do the same::

    from balanced_sampling_plugin.i18n import set_language
    set_language("pt_BR")

Messages are whole sentences with named placeholders, translated when they are shown (never at import,
so a language set later still applies)::

    progress.info(_("{kept} of {total} patches kept for clustering.").format(kept=k, total=n))

Strings defined at module level are marked with :func:`N_` (extracted, not translated) and passed through
:func:`_` where they are shown. The catalogue is ``locale/<lang>/LC_MESSAGES/balanced_sampling.po``,
regenerated from the code by ``make transup`` and compiled to ``.mo`` by ``make transcompile``.
"""

from __future__ import annotations

import gettext as _gettext
import os

DOMAIN = "balanced_sampling"
LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")

_translation: _gettext.NullTranslations = _gettext.NullTranslations()
_language = "en"


def _candidates(code: str) -> list[str]:
    """'pt-BR.UTF-8' -> ['pt_BR', 'pt']; '' or 'C' -> []."""
    code = (code or "").strip().split(".")[0].split("@")[0].replace("-", "_")
    if not code or code in ("C", "POSIX"):
        return []
    base = code.split("_")[0]
    return [code] if base == code else [code, base]


def set_language(code: str | None) -> str:
    """Translate the engine's messages into ``code`` (a locale such as 'pt_BR', 'pt-BR', 'pt_BR.UTF-8' or
    'en'); a language without a catalogue, '' or None means English. Returns the language now used."""
    global _translation, _language
    languages = _candidates(code or "")
    translation = _gettext.translation(DOMAIN, LOCALE_DIR, languages=languages or ["en"], fallback=True)
    if isinstance(translation, _gettext.GNUTranslations):
        _translation, _language = translation, languages[0]
    else:
        _translation, _language = _gettext.NullTranslations(), "en"
    return _language


def language() -> str:
    """The language messages are translated into ('en' when untranslated)."""
    return _language


def _(message: str) -> str:
    """``message`` in the current language (itself when it has no translation)."""
    return _translation.gettext(message)


tr = _


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark ``message`` for extraction without translating it (module-level constants); pass it through
    :func:`_` where it is shown."""
    return message
