"""The engine's messages (log lines, errors, the HTML report) are translatable with gettext, and the pt_BR
catalogue covers every one of them.

The catalogue is balanced_sampling_plugin/locale/pt_BR/LC_MESSAGES/balanced_sampling.po, regenerated from the
code by `make transup` (xgettext + msgmerge) and compiled to the tracked .mo by `make transcompile` (msgfmt).
"""

import ast
import gettext
import glob
import os
import re
import shutil
import string
import subprocess

import pytest

from balanced_sampling_plugin import i18n
from balanced_sampling_plugin.i18n import _
from tests.conftest import ROOT

ENGINE = os.path.join(ROOT, "balanced_sampling_plugin")
PO_FILE = os.path.join(ENGINE, "locale", "pt_BR", "LC_MESSAGES", "balanced_sampling.po")
MO_FILE = PO_FILE[:-3] + ".mo"
MARKERS = {"_", "N_", "tr"}

#: Tooling, not engine: demo data and a random model for tests; their messages stay English.
TOOLING = {"synthetic.py", "random_dinov2.py"}


def engine_sources():
    for path in sorted(glob.glob(os.path.join(ENGINE, "**", "*.py"), recursive=True)):
        yield os.path.relpath(path, ENGINE).replace(os.sep, "/"), path


def marked_calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKERS and node.args:
            yield node


def extract_msgids():
    """Every string literal passed to _()/N_()/tr() in the engine, as xgettext extracts it."""
    found = {}
    for name, path in engine_sources():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        for call in marked_calls(tree):
            argument = call.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                found.setdefault(argument.value, f"{name}:{call.lineno}")
    return found


def parse_po(path):
    """{msgid: (msgstr, fuzzy)} of a .po file (no plural forms in this catalogue), header left out."""
    entries, msgid, msgstr, fuzzy, target = {}, None, None, False, None

    def flush():
        if msgid:
            entries[msgid] = (msgstr or "", fuzzy)

    def unquote(text):
        return ast.literal_eval(text)  # a .po string is a valid Python string literal here

    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#~"):
                continue
            if line.startswith("#,"):
                flush()
                msgid, msgstr, target, fuzzy = None, None, None, "fuzzy" in line
            elif line.startswith("#"):
                continue
            elif line.startswith("msgid "):
                if target == "msgstr":
                    flush()
                    fuzzy = False
                msgid, msgstr, target = unquote(line[6:]), None, "msgid"
            elif line.startswith("msgstr "):
                msgstr, target = unquote(line[7:]), "msgstr"
            elif line.startswith('"'):
                if target == "msgid":
                    msgid += unquote(line)
                elif target == "msgstr":
                    msgstr += unquote(line)
    flush()
    return entries


def placeholders(text):
    return sorted({field for _, field, _, _ in string.Formatter().parse(text) if field is not None})


@pytest.fixture
def pt_br():
    assert i18n.set_language("pt_BR") == "pt_BR"
    yield
    i18n.set_language("en")


def test_messages_are_english_by_default():
    assert i18n.language() == "en"
    assert _("Canceled by the user; nothing was written.") == "Canceled by the user; nothing was written."


def test_set_language_reads_a_qgis_or_posix_locale(pt_br):
    portuguese = _("Canceled by the user; nothing was written.")
    assert portuguese != "Canceled by the user; nothing was written."
    for code in ("pt-BR", "pt_BR.UTF-8", "pt_BR"):
        assert i18n.set_language(code) == "pt_BR"
        assert _("Canceled by the user; nothing was written.") == portuguese
    for code in ("en", "en_US", "de_DE", "", None, "C"):
        assert i18n.set_language(code) == "en"
        assert _("Canceled by the user; nothing was written.") == "Canceled by the user; nothing was written."


def test_engine_errors_and_log_lines_follow_the_language(pt_br):
    from balanced_sampling_plugin.errors import OperationCanceled
    from balanced_sampling_plugin.progress import Progress

    with pytest.raises(OperationCanceled, match="nada foi gravado"):
        Progress(is_canceled=lambda: True).check_canceled()


def test_i18n_imports_only_the_standard_library():
    with open(os.path.join(ENGINE, "i18n.py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= {"gettext", "os", "__future__"}


def test_messages_are_whole_literal_sentences():
    """_() gets a literal (xgettext cannot see an f-string's text, and a translation of it never matches);
    values go in named placeholders filled by .format() after translation."""
    bad = []
    for name, path in engine_sources():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        for call in marked_calls(tree):
            argument = call.args[0]
            if isinstance(argument, (ast.JoinedStr, ast.BinOp)):
                bad.append(f"{name}:{call.lineno}")
            elif isinstance(argument, ast.Constant) and re.search(r"\{\d*\}", argument.value):
                bad.append(f"{name}:{call.lineno} (positional placeholder)")
    assert bad == []


def test_no_function_shadows_the_translation_function():
    """A function that assigns ``_`` (``_, x = pair``, ``for _ in``) makes ``_`` local to all of it, so its
    ``_("…")`` calls fail with UnboundLocalError, only when that message is shown."""
    bad = []
    for name, path in engine_sources():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            nodes = list(ast.walk(function))
            binds = any(isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store) for n in nodes)
            binds |= any(isinstance(n, ast.arg) and n.arg == "_" for n in nodes)
            calls = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_" for n in nodes)
            if binds and calls:
                bad.append(f"{name}:{function.lineno}")
    assert bad == []


def test_user_facing_engine_messages_are_marked_for_translation():
    """Log lines (progress.info/warning) and raised errors carry _("…") text, not a bare literal or f-string."""
    bare = []
    for name, path in engine_sources():
        if name in TOOLING:
            continue
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        for node in ast.walk(tree):
            arguments = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                    "info", "warning"):
                arguments = node.args[:1]
            elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                arguments = node.exc.args[:1]
            for argument in arguments:
                if isinstance(argument, ast.JoinedStr):
                    text = "".join(v.value for v in argument.values if isinstance(v, ast.Constant))
                elif isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    text = argument.value
                else:
                    continue
                if re.search(r"[A-Za-z]", text):  # f"{source}: {exc}" holds no words to translate
                    bare.append(f"{name}:{node.lineno}")
    assert bare == [], "wrap these messages in _(\"…\").format(...) and run `make transup`"


def test_pt_br_catalogue_translates_every_message_of_the_code():
    in_code = extract_msgids()
    catalogue = parse_po(PO_FILE)
    missing = {m[:70]: where for m, where in in_code.items() if m not in catalogue}
    assert missing == {}, "run `make transup`, translate the new messages, then `make transcompile`"
    untranslated = [m[:70] for m in in_code if not catalogue[m][0] or catalogue[m][1]]
    assert untranslated == [], "translate these (empty or fuzzy msgstr) in the .po"
    stale = [m[:70] for m in catalogue if m not in in_code]
    assert stale == [], "run `make transup` to drop messages the code no longer has"


def test_translations_keep_every_placeholder():
    wrong = [(msgid[:60], placeholders(msgstr)) for msgid, (msgstr, _) in parse_po(PO_FILE).items()
             if msgstr and placeholders(msgid) != placeholders(msgstr)]
    assert wrong == []


def test_compiled_catalogue_is_up_to_date():
    """The .mo (tracked: the plugin zip ships it) holds exactly the .po's translations."""
    with open(MO_FILE, "rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog
    compiled = {k: v for k, v in compiled.items() if k}
    expected = {msgid: msgstr for msgid, (msgstr, fuzzy) in parse_po(PO_FILE).items() if msgstr and not fuzzy}
    assert compiled == expected, "run `make transcompile`"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="xgettext (Debian gettext) is missing")
def test_xgettext_extracts_the_same_messages(tmp_path):
    """The ast extraction above and `make transup`'s xgettext agree."""
    pot = tmp_path / "engine.pot"
    sources = [path for _, path in engine_sources()]
    subprocess.run(["xgettext", "--language=Python", "--from-code=UTF-8", "--keyword=_", "--keyword=N_",
                    "--keyword=tr", "-o", str(pot), *sources], check=True, capture_output=True)
    assert set(parse_po(str(pot))) == set(extract_msgids())


@pytest.mark.skipif(shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")),
                    reason="not a git checkout")
def test_compiled_catalogue_is_tracked_so_the_plugin_zip_ships_it():
    """scripts/make_zip.sh packs the tracked files of balanced_sampling_plugin/: the .mo must be one."""
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", os.path.relpath(MO_FILE, ROOT)], cwd=ROOT,
                             capture_output=True)
    assert tracked.returncode == 0, "git add the .mo (make transcompile writes it)"
