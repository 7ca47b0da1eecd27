"""The translations (locale/) are complete, keep the English text's placeholders, and the
compiled catalogs the console loads say what their .po files say. The .mo files are committed
so that running the console needs no GNU gettext; `make messages` refreshes both."""

from __future__ import annotations

import re
from pathlib import Path

import polib
import pytest
from django.conf import settings

LOCALE = Path(settings.LOCALE_PATHS[0])
TRANSLATED = [code for code, _ in settings.LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdr]")


def _po(language: str) -> polib.POFile:
    return polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))


def _texts(entry: polib.POEntry | polib.MOEntry) -> list[str]:
    return list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]


def _catalog(entries: polib._BaseFile) -> dict[tuple[str | None, str], list[str]]:
    return {(entry.msgctxt, entry.msgid): _texts(entry) for entry in entries if entry.msgid and not entry.obsolete}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated(language: str) -> None:
    po = _po(language)
    assert len(po) > 400  # the whole console, not an empty file
    untranslated = [entry.msgid for entry in po if not entry.obsolete and not all(_texts(entry))]
    fuzzy = [entry.msgid for entry in po if "fuzzy" in entry.flags]
    assert untranslated == []
    assert fuzzy == []  # a guess gettext skips: the page would fall back to English


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders_of_the_english_text(language: str) -> None:
    for entry in _po(language):
        expected = set(PLACEHOLDER.findall(entry.msgid)) | set(PLACEHOLDER.findall(entry.msgid_plural or ""))
        for text in _texts(entry):
            assert set(PLACEHOLDER.findall(text)) == expected, entry.msgid


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalog_says_what_its_po_file_says(language: str) -> None:
    """Fails when a .po was edited without `make messages` (or compilemessages) after it."""
    compiled = polib.mofile(str(LOCALE / language / "LC_MESSAGES" / "django.mo"))
    assert _catalog(compiled) == _catalog(_po(language))
