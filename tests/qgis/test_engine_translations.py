"""A Brazilian user runs the whole chain: every log line (the QGIS side's and the engine's) and the HTML report
come out in Portuguese, and the engine's errors too.

The QGIS side is translated by Qt (i18n/*.qm); the engine, which never imports Qt, by gettext
(balanced_sampling_plugin/locale). The plugin sets both from the QGIS user locale when it is created.
"""

import ast
import html.parser
import os
import re

import pytest
from qgis.core import QgsProcessingException, QgsSettings

from tests.conftest import ROOT

from .conftest import RecordingFeedback

PO_FILE = os.path.join(ROOT, "balanced_sampling_plugin", "locale", "pt_BR", "LC_MESSAGES", "balanced_sampling.po")
SAMPLING_METHODS = ("rank_max", "rank_multiply", "rank_add", "multiplicative", "composition_only",
                    "uniqueness_only", "class_balanced")
#: Words of English prose that Portuguese never uses; identifiers (rank_max, border_nodata, cls_1) and paths
#: are single tokens with underscores, dots or slashes, so they do not match.
ENGLISH_WORDS = {"the", "of", "and", "is", "are", "was", "were", "with", "from", "for", "to", "by", "not",
                 "kept", "excluded", "included", "weight", "weights", "written", "wrote", "computed", "computing",
                 "patches:", "summary", "shares", "uniform", "method", "every", "reason", "options", "embeddings:"}


def catalogue():
    """(msgid, msgstr) pairs of the engine's pt_BR catalogue."""
    entries, msgid, msgstr, target = [], None, None, None
    with open(PO_FILE, encoding="utf-8") as handle:
        for line in (raw.strip() for raw in handle):
            if line.startswith("msgid "):
                if msgid:
                    entries.append((msgid, msgstr))
                msgid, msgstr, target = ast.literal_eval(line[6:]), "", "msgid"
            elif line.startswith("msgstr "):
                msgstr, target = ast.literal_eval(line[7:]), "msgstr"
            elif line.startswith('"') and target == "msgid":
                msgid += ast.literal_eval(line)
            elif line.startswith('"') and target == "msgstr":
                msgstr += ast.literal_eval(line)
    if msgid:
        entries.append((msgid, msgstr))
    return entries


def pattern(template):
    """A regex matching ``template`` with any values in its {placeholders}."""
    parts = re.split(r"\{[a-z_]*(?:![rs])?(?::[^}]*)?\}", template)
    return re.compile(".*?".join(re.escape(p) for p in parts), re.DOTALL)


def english_words(text):
    tokens = (token.strip(".,;:()[]'\"!?").lower() for token in text.split())
    return sorted({token for token in tokens if token in ENGLISH_WORDS})


class VisibleText(html.parser.HTMLParser):
    """The text a reader sees in the report: page and SVG text, titles (tooltips), not the style sheet."""

    def __init__(self):
        super().__init__()
        self.chunks, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.chunks.append(data.strip())


@pytest.fixture
def brazilian_user(plugin):
    """The plugin as QGIS creates it for a user whose QGIS locale is pt_BR; English again afterwards."""
    import balanced_sampling
    from balanced_sampling.balanced_sampling_plugin import i18n

    settings = QgsSettings()
    previous = settings.value("locale/userLocale", "")
    settings.setValue("locale/userLocale", "pt_BR")
    localized = balanced_sampling.classFactory(None)
    try:
        assert i18n.language() == "pt_BR", "the plugin sets the engine's language from the QGIS locale"
        yield localized
    finally:
        localized.unload()
        settings.setValue("locale/userLocale", previous)
        i18n.set_language(previous or "en")
    assert i18n.language() == "en"


def test_the_chain_speaks_portuguese_in_the_log_and_the_report(brazilian_user, run_algorithm, synthetic_dataset,
                                                               tiny_model, tmp_path):
    feedback = RecordingFeedback()
    result = run_algorithm("buildbalanceddataset", {
        "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
        "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128,
        "DINO_MODEL": tiny_model, "SAMPLING_METHOD": SAMPLING_METHODS.index("rank_max"),
        "PARQUET_PATH": str(tmp_path / "cache.parquet"),
        "OUTPUT": str(tmp_path / "w.gpkg"), "OUTPUT_CSV": str(tmp_path / "t.csv"),
        "OUTPUT_REPORT": str(tmp_path / "r.html")}, feedback)
    lines = [line for line in feedback.lines if line.strip()]
    assert lines, "the chain logs what it does"

    pairs = [(msgid, msgstr) for msgid, msgstr in catalogue() if msgstr and msgstr != msgid]
    english = {msgid: pattern(msgid) for msgid, _ in pairs if len(re.sub(r"\{[^}]*\}", "", msgid)) > 12}
    portuguese = [pattern(msgstr) for _, msgstr in pairs]
    untranslated = [(line, msgid) for line in lines for msgid, regex in english.items() if regex.fullmatch(line)]
    assert untranslated == [], "engine lines left in English"
    assert any(p.fullmatch(line) for line in lines for p in portuguese), "no engine line came out translated"
    assert any("patches mantidos para o agrupamento" in line for line in lines), lines
    assert any(line.startswith("Clusters de composição: k=") for line in lines), lines
    prose = {line: english_words(line) for line in lines if english_words(line)}
    assert prose == {}, "English words in the log"

    with open(result["OUTPUT_REPORT"], encoding="utf-8") as handle:
        page = handle.read()
    assert '<html lang="pt-BR">' in page
    reader = VisibleText()
    reader.feed(page)
    visible = [chunk for chunk in reader.chunks if english_words(chunk)]
    assert visible == [], "English words in the report"
    text = "\n".join(reader.chunks)
    for heading in ("Resumo", "Distribuição dos pesos", "Proporções das classes", "Todos os métodos lado a lado",
                    "Relatório de amostragem balanceada"):
        assert heading in text


def test_engine_errors_reach_the_user_in_portuguese(brazilian_user, run_algorithm, synthetic_dataset, tmp_path):
    with pytest.raises(QgsProcessingException, match="Nenhum arquivo em .* corresponde a"):
        run_algorithm("buildbalanceddataset", {
            "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]), "IMAGE_PATTERN": "*.no-such-extension",
            "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128,
            "OUTPUT": str(tmp_path / "w.gpkg"), "OUTPUT_CSV": str(tmp_path / "t.csv"),
            "OUTPUT_REPORT": str(tmp_path / "r.html")})


def test_english_is_back_for_the_next_user(plugin, run_algorithm, synthetic_dataset, tmp_path):
    """Runs after the pt_BR tests in this module: nothing of the Brazilian session leaks."""
    from balanced_sampling.balanced_sampling_plugin import i18n

    assert i18n.language() == "en"
    with pytest.raises(QgsProcessingException, match="No file in .* matches"):
        run_algorithm("buildbalanceddataset", {
            "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]), "IMAGE_PATTERN": "*.no-such-extension",
            "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128,
            "OUTPUT": str(tmp_path / "w.gpkg"), "OUTPUT_CSV": str(tmp_path / "t.csv"),
            "OUTPUT_REPORT": str(tmp_path / "r.html")})
