"""The translations (locale/) are complete, keep the English text's placeholders, and the
compiled catalogs the console loads say what their .po files say. The .mo files are committed
so that running the console needs no GNU gettext; `make messages` refreshes both."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.template.base import Lexer, TokenType

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


# Words every language writes the same: the product's name, units and codes, examples of codes.
SAME_IN_EVERY_LANGUAGE = {"DLR", "Console", "UTC", "HTTP", "ms", "FR", "GB"}
TEMPLATES = Path(settings.BASE_DIR) / "templates"
# Where a reader sees text besides an element's content.
VISIBLE_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt"}
WORD = re.compile(r"[^\W\d_]{2,}")
_HOLE = "\x1f"  # where a template tag or variable was: text never runs across it
BLOCK_DEPTH = {"blocktranslate": 1, "blocktrans": 1, "endblocktranslate": -1, "endblocktrans": -1}
_ENGLISH_LITERAL = re.compile(r"""\|default(?:_if_none)?:(["'])[^"']*[^\W\d_]{2}""")


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._hidden = 0  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("script", "style")
        for name, value in attrs:
            if name in VISIBLE_ATTRIBUTES and value:
                self._check(value)

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._check(data)

    def _check(self, text: str) -> None:
        for part in text.split(_HOLE):
            words = [word for word in WORD.findall(part) if word not in SAME_IN_EVERY_LANGUAGE]
            if words:
                self.found.append(" ".join(part.split()))


def untranslated_texts(source: str) -> list[str]:
    """The texts of a template a reader sees outside {% translate %} and {% blocktranslate %}:
    its elements' text and visible attributes, and English given to `default` filters."""
    kept, inside_block, inside_comment = [], 0, False
    for token in Lexer(source).tokenize():
        name = token.contents.split()[0] if token.token_type == TokenType.BLOCK and token.contents else ""
        inside_block += BLOCK_DEPTH.get(name, 0)
        inside_comment = (inside_comment or name == "comment") and name != "endcomment"
        if token.token_type == TokenType.TEXT and not inside_block and not inside_comment:
            kept.append(token.contents)
        else:
            kept.append(_HOLE)
            if token.token_type == TokenType.VAR and _ENGLISH_LITERAL.search(token.contents):
                kept.append(token.contents)
    parser = _VisibleText()
    parser.feed("".join(kept))
    parser.close()
    return parser.found


@pytest.mark.parametrize("template", sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html")))
def test_every_text_a_template_shows_is_marked_for_translation(template: str) -> None:
    assert untranslated_texts((TEMPLATES / template).read_text()) == []


def test_the_template_check_finds_english_outside_the_translation_tags() -> None:
    source = (
        '{% load i18n %}<h1>{% translate "Pilots" %}</h1><p title="Not judged">{{ n }} to do</p>'
        "{% blocktranslate %}{{ n }} sent{% endblocktranslate %} <td>{{ x|default:'none chosen' }}</td> 42 UTC — ✓"
    )
    assert untranslated_texts(source) == ["Not judged", "to do", "x|default:'none chosen'"]
