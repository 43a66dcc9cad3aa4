"""Path checks before any work, and partial outputs renamed together (balanced_sampling_plugin.file_safety).

Runs as root in CI: permission bits do not stop root, so "read-only" here is a real read-only
mount (tmpfs remounted ``ro``); without root it falls back to ``chmod 0o555``.
"""

import hashlib
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from balanced_sampling_plugin import file_safety
from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.file_safety import (
    OutputFiles,
    atomic_write,
    check_paths,
    check_writable,
    discard,
    file_identity,
    partial_path,
    promote,
    remove_stale_partials,
    same_file,
)
from tests.read_only import read_only_folder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PARTIAL_RX = re.compile(r"^\.balanced-sampling-partial-[0-9a-f]{6}-\d+-[0-9a-f]{8}$")


# --------------------------------------------------------------------------- helpers


def write(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return str(path)


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def sha1(path):
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()


def partial_folders(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith(".balanced-sampling-partial"))


def dead_pid():
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def stale_folder(folder, pid, host=None, suffix="deadbeef"):
    path = os.path.join(str(folder), f".balanced-sampling-partial-{host or file_safety._host_tag()}-{pid}-{suffix}")
    os.mkdir(path)
    write(os.path.join(path, "out.csv"), "half a fi")
    return path


# --------------------------------------------------------------------------- identity


def test_file_identity_normalises_spellings_and_links(tmp_path):
    (tmp_path / "a").mkdir()
    target = write(tmp_path / "a" / "x.csv", "x")
    os.symlink(tmp_path / "a", tmp_path / "link_to_a")
    os.symlink(target, tmp_path / "x_link.csv")
    expected = os.path.realpath(target)
    assert file_identity(os.path.join(str(tmp_path), "a", "..", "a", "x.csv")) == expected
    assert file_identity(tmp_path / "link_to_a" / "x.csv") == expected
    assert file_identity(tmp_path / "x_link.csv") == expected
    # a file that does not exist yet still has a key, through a linked folder too
    real_a = os.path.realpath(tmp_path / "a")
    assert file_identity(tmp_path / "link_to_a" / "new.csv") == os.path.join(real_a, "new.csv")
    assert file_identity(tmp_path / "a" / "X.csv") != expected  # case matters on this file system


def test_file_identity_expands_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert file_identity("~/out.csv") == os.path.join(os.path.realpath(tmp_path), "out.csv")


def test_same_file_through_hard_link_and_for_missing_files(tmp_path):
    original = write(tmp_path / "x.csv", "x")
    os.link(original, tmp_path / "hard.csv")
    other = write(tmp_path / "y.csv", "x")
    assert same_file(original, tmp_path / "hard.csv")
    assert file_identity(original) != file_identity(tmp_path / "hard.csv")  # only samefile sees it
    assert not same_file(original, other)
    assert same_file(tmp_path / "missing.csv", os.path.join(str(tmp_path), ".", "missing.csv"))
    assert not same_file(tmp_path / "missing.csv", tmp_path / "missing2.csv")
    assert not same_file(original, tmp_path / "missing.csv")


def test_this_file_system_is_case_sensitive(tmp_path):
    file_safety._case_insensitive.cache_clear()
    (tmp_path / "Data").mkdir()
    assert file_safety._case_insensitive(str(tmp_path / "Data")) is False
    assert not same_file(tmp_path / "Data" / "out.csv", tmp_path / "Data" / "OUT.csv")


def test_case_insensitive_folder_case_folds_identities(tmp_path):
    """No case-insensitive file system can be mounted here (no vfat tools, no ext4 casefold in
    this kernel); a folder whose swapped-case name is a link to itself looks exactly like one."""
    file_safety._case_insensitive.cache_clear()
    folder = tmp_path / "Data"
    folder.mkdir()
    os.symlink(folder, tmp_path / "dATA")
    assert file_safety._case_insensitive(str(folder)) is True
    write(folder / "Input.csv", "x")
    assert file_identity(folder / "INPUT.CSV") == file_identity(folder / "input.csv")
    assert same_file(folder / "OUT.csv", folder / "out.csv")
    with pytest.raises(BalancedSamplingError, match="would destroy the input"):
        check_paths({"OUTPUT": str(folder / "INPUT.CSV")}, {"INPUT": str(folder / "Input.csv")})
    with pytest.raises(BalancedSamplingError, match="both point to"):
        check_paths({"OUTPUT": str(folder / "Out.csv"), "OUTPUT_CSV": str(folder / "out.CSV")})
    file_safety._case_insensitive.cache_clear()


# --------------------------------------------------------------------------- check_paths


@pytest.fixture
def layer(tmp_path):
    return write(tmp_path / "layer.csv", "patch_id\n1\n")


def _destroy_message(excinfo):
    message = str(excinfo.value)
    assert "OUTPUT" in message and "INPUT" in message and "would destroy the input" in message
    return message


def test_output_equal_to_input_same_string(layer):
    with pytest.raises(BalancedSamplingError) as excinfo:
        check_paths({"OUTPUT": layer}, {"INPUT": layer})
    message = _destroy_message(excinfo)
    assert message.startswith(f"OUTPUT '{layer}' is the input INPUT:")


def test_output_equal_to_input_other_spelling(tmp_path):
    (tmp_path / "a").mkdir()
    source = write(tmp_path / "a" / "x.csv", "x")
    spelled = os.path.join(str(tmp_path), "a", "..", "a", "x.csv")
    with pytest.raises(BalancedSamplingError) as excinfo:
        check_paths({"OUTPUT": spelled}, {"INPUT": source})
    message = _destroy_message(excinfo)
    assert f"'{spelled}'" in message and f"('{source}')" in message


def test_output_equal_to_input_that_does_not_exist_yet(tmp_path):
    # no file yet: still one identity, still refused
    with pytest.raises(BalancedSamplingError) as excinfo:
        check_paths({"OUTPUT": str(tmp_path / "sub" / ".." / "x.csv")}, {"INPUT": str(tmp_path / "x.csv")})
    _destroy_message(excinfo)


def test_output_is_a_symlink_to_the_input_and_the_other_way(tmp_path, layer):
    link = tmp_path / "link.csv"
    os.symlink(layer, link)
    with pytest.raises(BalancedSamplingError) as excinfo:
        check_paths({"OUTPUT": str(link)}, {"INPUT": layer})
    _destroy_message(excinfo)
    with pytest.raises(BalancedSamplingError) as excinfo:
        check_paths({"OUTPUT": layer}, {"INPUT": str(link)})
    _destroy_message(excinfo)


def test_output_in_a_symlinked_folder(tmp_path, layer):
    os.symlink(tmp_path, tmp_path.parent / (tmp_path.name + "_alias"))
    alias = os.path.join(str(tmp_path.parent), tmp_path.name + "_alias", "layer.csv")
    try:
        with pytest.raises(BalancedSamplingError) as excinfo:
            check_paths({"OUTPUT": alias}, {"INPUT": layer})
        _destroy_message(excinfo)
    finally:
        os.remove(os.path.join(str(tmp_path.parent), tmp_path.name + "_alias"))


def test_output_is_a_hard_link_to_the_input(tmp_path, layer):
    hard = str(tmp_path / "hard.csv")
    os.link(layer, hard)
    with pytest.raises(BalancedSamplingError) as excinfo:
        check_paths({"OUTPUT": hard}, {"INPUT": layer})
    message = _destroy_message(excinfo)
    assert f"('{layer}')" in message


def test_two_outputs_on_one_file(tmp_path):
    csv = str(tmp_path / "out.csv")
    with pytest.raises(BalancedSamplingError, match="OUTPUT_CSV and OUTPUT_REPORT both point to") as excinfo:
        check_paths({"OUTPUT_CSV": csv, "OUTPUT_REPORT": csv})
    assert csv in str(excinfo.value) and "Give each output its own file" in str(excinfo.value)
    # other spellings of one missing file
    with pytest.raises(BalancedSamplingError, match="OUTPUT and OUTPUT_CSV both point to"):
        check_paths({"OUTPUT": csv, "OUTPUT_CSV": os.path.join(str(tmp_path), ".", "x", "..", "out.csv")})
    # an existing file and its hard link
    write(csv, "x")
    os.link(csv, tmp_path / "hard.csv")
    with pytest.raises(BalancedSamplingError, match="OUTPUT and OUTPUT_CSV both point to"):
        check_paths({"OUTPUT": csv, "OUTPUT_CSV": str(tmp_path / "hard.csv")})


def test_empty_outputs_are_ignored(tmp_path, layer):
    before = sorted(os.listdir(tmp_path))
    check_paths(
        {"OUTPUT": str(tmp_path / "out.gpkg"), "OUTPUT_CSV": None, "OUTPUT_REPORT": "", "PARQUET_PATH": None},
        {"INPUT": layer, "MASKS": None, "EMPTY": ""},
    )
    # the writability probe leaves nothing behind
    assert sorted(os.listdir(tmp_path)) == before


def test_several_reads_as_a_list(tmp_path):
    rasters = [write(tmp_path / f"image_{i}.tif", "tif") for i in range(3)]
    reads = {"INPUT": write(tmp_path / "layer.gpkg", "gpkg"), "image rasters (field image_path)": rasters + [None, ""]}
    check_paths({"OUTPUT": str(tmp_path / "out.gpkg")}, reads)
    with pytest.raises(BalancedSamplingError) as excinfo:
        check_paths({"OUTPUT_CSV": rasters[1]}, reads)
    assert str(excinfo.value).startswith(f"OUTPUT_CSV '{rasters[1]}' is the input image rasters (field image_path):")
    assert "would destroy the input" in str(excinfo.value)
    with pytest.raises(BalancedSamplingError, match=r"is the input mask rasters"):
        check_paths({"OUTPUT": rasters[2]}, {"mask rasters": (r for r in rasters)})


def test_output_in_a_missing_folder(tmp_path):
    missing = tmp_path / "no_such_folder" / "out.csv"
    with pytest.raises(BalancedSamplingError) as excinfo:
        check_paths({"OUTPUT_CSV": str(missing)}, {"INPUT": str(tmp_path / "in.csv")})
    message = str(excinfo.value)
    assert "OUTPUT_CSV" in message and "does not exist" in message
    assert f"'{tmp_path / 'no_such_folder'}'" in message
    assert not (tmp_path / "no_such_folder").exists()


def test_output_that_is_a_folder(tmp_path):
    (tmp_path / "outputs").mkdir()
    with pytest.raises(BalancedSamplingError, match="OUTPUT_REPORT '.*outputs' is a folder; give a file name inside"):
        check_paths({"OUTPUT_REPORT": str(tmp_path / "outputs")})


def test_output_in_a_read_only_folder(tmp_path):
    folder = str(tmp_path / "ro")
    with read_only_folder(folder, populate=lambda f: write(os.path.join(f, "old.csv"), "old")):
        with pytest.raises(BalancedSamplingError) as excinfo:
            check_paths({"OUTPUT_CSV": os.path.join(folder, "new.csv")})
        message = str(excinfo.value)
        assert "OUTPUT_CSV" in message and "not writable" in message and f"'{folder}'" in message
        assert os.listdir(folder) == ["old.csv"]
        # an existing file there
        with pytest.raises(BalancedSamplingError, match="OUTPUT_CSV .*(read-only|not writable)"):
            check_paths({"OUTPUT_CSV": os.path.join(folder, "old.csv")})


def test_conflicts_are_named_before_writability(tmp_path):
    """An output that is an input is named as such even when its folder is also read-only."""
    folder = str(tmp_path / "ro")
    with read_only_folder(folder, populate=lambda f: write(os.path.join(f, "in.csv"), "in")):
        with pytest.raises(BalancedSamplingError, match="would destroy the input"):
            check_paths({"OUTPUT": os.path.join(folder, "in.csv")}, {"INPUT": os.path.join(folder, "in.csv")})


def test_check_writable_accepts_a_writable_path(tmp_path):
    check_writable(tmp_path / "new.csv", "OUTPUT")
    write(tmp_path / "old.csv", "old")
    check_writable(str(tmp_path / "old.csv"), "OUTPUT")
    assert sorted(os.listdir(tmp_path)) == ["old.csv"]
    assert read(tmp_path / "old.csv") == "old"
    with pytest.raises(BalancedSamplingError, match="Cannot write The output .*does not exist"):
        check_writable(tmp_path / "missing" / "x.csv")


# --------------------------------------------------------------------------- partial files


def test_partial_path_is_a_hidden_folder_beside_the_destination(tmp_path):
    destination = tmp_path / "out.gpkg"
    partial = partial_path(destination)
    folder, name = os.path.split(partial)
    assert name == "out.gpkg"
    assert os.path.dirname(folder) == str(tmp_path)
    assert PARTIAL_RX.match(os.path.basename(folder))
    assert f"-{file_safety._host_tag()}-{os.getpid()}-" in os.path.basename(folder)
    assert os.path.isdir(folder) and not os.path.exists(partial)
    assert partial_path(destination) != partial  # a new folder each time
    discard(partial)
    assert not os.path.exists(folder)


def test_commit_renames_every_partial_into_place(tmp_path):
    csv = write(tmp_path / "out.csv", "old csv")
    (tmp_path / "reports").mkdir()
    report = str(tmp_path / "reports" / "report.html")
    with OutputFiles() as outputs:
        partial_csv = outputs.partial(csv)
        partial_report = outputs.partial(report)
        assert os.path.dirname(os.path.dirname(partial_report)) == str(tmp_path / "reports")
        write(partial_csv, "new csv")
        write(partial_report, "<html/>")
        assert read(csv) == "old csv" and not os.path.exists(report)  # nothing moves before commit
        outputs.commit()
        assert read(csv) == "new csv" and read(report) == "<html/>"
    assert read(csv) == "new csv" and read(report) == "<html/>"
    assert partial_folders(tmp_path) == [] and partial_folders(tmp_path / "reports") == []


def test_an_error_keeps_earlier_files(tmp_path):
    csv = write(tmp_path / "out.csv", "old csv")
    layer = write(tmp_path / "out.geojson", '{"old": true}')
    before = sha1(csv), sha1(layer)
    with pytest.raises(RuntimeError, match="disk on fire"):
        with OutputFiles() as outputs:
            write(outputs.partial(csv), "new csv")
            write(outputs.partial(layer), '{"new": tr')
            assert len(partial_folders(tmp_path)) == 2
            raise RuntimeError("disk on fire")
    assert (sha1(csv), sha1(layer)) == before
    assert not os.path.exists(tmp_path / "new.csv")
    assert partial_folders(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["out.csv", "out.geojson"]


def test_commit_refuses_when_a_partial_is_missing(tmp_path):
    csv = write(tmp_path / "out.csv", "old csv")
    report = str(tmp_path / "report.html")
    with pytest.raises(BalancedSamplingError, match=r"The output '.*report\.html' was not written completely; nothing"):
        with OutputFiles() as outputs:
            write(outputs.partial(csv), "new csv")
            outputs.partial(report)  # never written
            outputs.commit()
    assert read(csv) == "old csv" and not os.path.exists(report)
    assert partial_folders(tmp_path) == []


def test_multi_file_layer_is_renamed_with_its_companions(tmp_path):
    old = {ext: write(tmp_path / f"layer{ext}", f"old {ext}") for ext in (".shp", ".dbf", ".shx", ".qix", ".cpg")}
    os.chmod(old[".dbf"], 0o600)
    unrelated = {name: write(tmp_path / name, name) for name in ("other.qix", "other.dbf", "layer_1.cpg", "notes.txt")}
    with OutputFiles() as outputs:
        partial = outputs.partial(tmp_path / "layer.shp")
        for ext in (".shp", ".dbf", ".shx", ".prj"):
            write(os.path.splitext(partial)[0] + ext, f"new {ext}")
        outputs.commit()
    for ext in (".shp", ".dbf", ".shx", ".prj"):
        assert read(tmp_path / f"layer{ext}") == f"new {ext}"
    # an old spatial index / code page would describe the old layer: gone
    assert not os.path.exists(tmp_path / "layer.qix") and not os.path.exists(tmp_path / "layer.cpg")
    assert stat.S_IMODE(os.stat(tmp_path / "layer.dbf").st_mode) == 0o600
    for name, path in unrelated.items():
        assert read(path) == name
    assert partial_folders(tmp_path) == []


def test_single_file_output_does_not_touch_look_alike_companions(tmp_path):
    write(tmp_path / "out.qix", "keep")
    write(tmp_path / "out.cpg", "keep")
    with OutputFiles() as outputs:
        partial = outputs.partial(tmp_path / "out.csv")
        write(partial, "csv")
        write(os.path.join(os.path.dirname(partial), "out.xsd"), "schema")  # a writer's own companion file
        outputs.commit()
    assert read(tmp_path / "out.csv") == "csv"
    assert read(tmp_path / "out.xsd") == "schema", "everything the writer put in its private folder is placed"
    assert read(tmp_path / "out.qix") == "keep" and read(tmp_path / "out.cpg") == "keep"
    assert partial_folders(tmp_path) == []


def test_a_layer_of_another_format_with_the_same_name_is_never_touched(tmp_path):
    """Writing patches.tab beside the shapefile patches.shp (the input) leaves every shapefile file."""
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        write(tmp_path / f"patches{ext}", ext)
    with OutputFiles() as outputs:
        partial = outputs.partial(tmp_path / "patches.tab")
        for ext in (".tab", ".dat", ".map", ".id"):
            write(os.path.splitext(partial)[0] + ext, "new" + ext)
        outputs.commit()
    assert [read(tmp_path / f"patches{ext}") for ext in (".shp", ".shx", ".dbf", ".prj")] == \
        [".shp", ".shx", ".dbf", ".prj"]
    assert read(tmp_path / "patches.dat") == "new.dat"


def test_a_failed_rename_puts_every_replaced_file_back(tmp_path, monkeypatch):
    write(tmp_path / "a.csv", "old a")
    write(tmp_path / "b.csv", "old b")
    real_replace = os.replace

    def replace(source, target):
        if os.path.basename(str(target)) == "b.csv" and file_safety.PREVIOUS not in str(source) \
                and file_safety.PREVIOUS not in str(target):
            raise PermissionError(32, "used by another process")
        return real_replace(source, target)

    with OutputFiles() as outputs:
        write(outputs.partial(tmp_path / "a.csv"), "new a")
        write(outputs.partial(tmp_path / "b.csv"), "new b")
        monkeypatch.setattr(file_safety.os, "replace", replace)
        with pytest.raises(PermissionError):
            outputs.commit()
        monkeypatch.setattr(file_safety.os, "replace", real_replace)
    assert (read(tmp_path / "a.csv"), read(tmp_path / "b.csv")) == ("old a", "old b")
    assert partial_folders(tmp_path) == []


def test_restore_after_commit_puts_the_earlier_files_back(tmp_path):
    write(tmp_path / "a.csv", "old a")
    with OutputFiles() as outputs:
        write(outputs.partial(tmp_path / "a.csv"), "new a")
        write(outputs.partial(tmp_path / "new.csv"), "new")
        outputs.commit()
        assert read(tmp_path / "a.csv") == "new a"
        outputs.restore()  # e.g. the database commit that followed failed
    assert read(tmp_path / "a.csv") == "old a"
    assert not os.path.exists(tmp_path / "new.csv")
    assert partial_folders(tmp_path) == []


def test_a_commit_handed_over_can_be_undone_after_its_block_ended(tmp_path):
    """A last step that runs after the block (a memory layer updated in the main thread) keeps the undo."""
    write(tmp_path / "a.csv", "old a")
    with OutputFiles() as outputs:
        write(outputs.partial(tmp_path / "a.csv"), "new a")
        outputs.commit()
        kept = outputs.hand_over()
    assert read(tmp_path / "a.csv") == "new a" and partial_folders(tmp_path)  # the old file still aside
    with kept:
        kept.restore()  # the last step failed
    assert read(tmp_path / "a.csv") == "old a" and partial_folders(tmp_path) == []

    with OutputFiles() as outputs:
        write(outputs.partial(tmp_path / "a.csv"), "newer a")
        outputs.commit()
        kept = outputs.hand_over()
    with kept:  # the last step succeeded: the replaced file goes
        pass
    assert read(tmp_path / "a.csv") == "newer a" and partial_folders(tmp_path) == []


def test_a_kill_between_moving_aside_and_placing_is_repaired_by_the_next_run(tmp_path):
    write(tmp_path / "a.csv", "old a")
    # What a process killed mid-commit leaves: its partial folder holds the new file and, aside, the old one.
    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = tmp_path / f".balanced-sampling-partial-{file_safety._host_tag()}-{dead.pid}-0123abcd"
    os.makedirs(folder / file_safety.PREVIOUS)
    os.replace(tmp_path / "a.csv", folder / file_safety.PREVIOUS / "a.csv")
    write(folder / "a.csv", "new a")
    OutputFiles().partial(tmp_path / "other.csv")
    assert read(tmp_path / "a.csv") == "old a"
    assert not folder.exists()


def test_replaced_file_keeps_its_permission_bits(tmp_path):
    csv = write(tmp_path / "out.csv", "old")
    os.chmod(csv, 0o640)
    script = write(tmp_path / "run.sh", "#!/bin/sh\n")
    os.chmod(script, 0o751)
    with OutputFiles() as outputs:
        p_csv, p_script = outputs.partial(csv), outputs.partial(script)
        write(p_csv, "new")
        write(p_script, "#!/bin/sh\necho new\n")
        os.chmod(p_csv, 0o666)
        outputs.commit()
    assert stat.S_IMODE(os.stat(csv).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(script).st_mode) == 0o751
    assert read(csv) == "new"


def test_promote_and_discard_directly(tmp_path):
    destination = write(tmp_path / "out.txt", "old")
    partial = partial_path(destination)
    write(partial, "new")
    promote(partial, destination)
    assert read(destination) == "new" and partial_folders(tmp_path) == []
    partial = partial_path(destination)
    write(partial, "newer")
    discard(partial)
    assert read(destination) == "new" and partial_folders(tmp_path) == []
    discard(partial)  # twice is harmless


# --------------------------------------------------------------------------- stale partial folders


def test_stale_partial_of_a_dead_process_is_removed_by_the_next_run(tmp_path):
    stale = stale_folder(tmp_path, dead_pid())
    with OutputFiles() as outputs:
        partial = outputs.partial(tmp_path / "out.csv")
        assert not os.path.exists(stale)
        assert partial_folders(tmp_path) == [os.path.basename(os.path.dirname(partial))]
        write(partial, "done")
        outputs.commit()
    assert read(tmp_path / "out.csv") == "done"
    assert partial_folders(tmp_path) == []


def test_remove_stale_partials_keeps_live_foreign_and_unrelated_folders(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        live = stale_folder(tmp_path, sleeper.pid, suffix="00000001")
        mine = stale_folder(tmp_path, os.getpid(), suffix="00000002")
        other_tag = "000000" if file_safety._host_tag() != "000000" else "111111"
        dead = dead_pid()
        other_host = stale_folder(tmp_path, dead, host=other_tag, suffix="00000003")
        stale = stale_folder(tmp_path, dead, suffix="00000004")
        unrelated = [
            os.path.join(str(tmp_path), name)
            for name in (".balanced-sampling-partial", f".balanced-sampling-partial-{file_safety._host_tag()}-{dead}",
                         f"balanced-sampling-partial-{file_safety._host_tag()}-{dead}-deadbeef", "results")
        ]
        for path in unrelated:
            os.mkdir(path)
        # a plain file with a partial folder's name is not a folder: left alone
        as_file = write(tmp_path / f".balanced-sampling-partial-{file_safety._host_tag()}-{dead}-0000000f", "x")
        (tmp_path / "sub").mkdir()
        elsewhere = stale_folder(tmp_path / "sub", dead)

        assert remove_stale_partials(tmp_path / "out.csv") == [stale]
        assert not os.path.exists(stale)
        for path in (live, mine, other_host, *unrelated, as_file, elsewhere):
            assert os.path.exists(path), path
        assert read(os.path.join(live, "out.csv")) == "half a fi"
        assert remove_stale_partials(tmp_path / "out.csv") == []
    finally:
        sleeper.kill()
        sleeper.wait()
    # the sleeper is gone: its folder is now stale
    assert remove_stale_partials(tmp_path / "x") == [live]


def test_remove_stale_partials_of_a_missing_folder(tmp_path):
    assert remove_stale_partials(tmp_path / "missing" / "out.csv") == []


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from balanced_sampling_plugin.file_safety import OutputFiles, atomic_write

    destination = sys.argv[2]
    if sys.argv[3] == "outputs":
        with OutputFiles() as outputs:
            partial = outputs.partial(destination)
            handle = open(partial, "w")
            handle.write("half of the new con")
            handle.flush()
            print(partial, flush=True)
            time.sleep(60)
            handle.write("tent")
            handle.close()
            outputs.commit()
    else:
        with atomic_write(destination) as handle:
            handle.write("half of the new con")
            handle.flush()
            print("ready", flush=True)
            time.sleep(60)
    """
)


@pytest.mark.parametrize("how", ["outputs", "atomic_write"])
def test_killed_process_leaves_the_destination_and_the_next_run_cleans_up(tmp_path, how):
    destination = write(tmp_path / "out.csv", "old content")
    before = sha1(destination)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, ROOT, destination, how], stdout=subprocess.PIPE, text=True
    )
    try:
        line = writer.stdout.readline().strip()
        assert line, "the writer did not start"
        (folder,) = partial_folders(tmp_path)
        partial = os.path.join(str(tmp_path), folder, "out.csv")
        assert line in ("ready", partial)
        assert read(partial) == "half of the new con"
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=30) == -signal.SIGTERM
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        writer.stdout.close()
    assert sha1(destination) == before
    leftover = os.path.dirname(partial)
    assert os.path.isdir(leftover) and PARTIAL_RX.match(os.path.basename(leftover))
    assert f"-{writer.pid}-" in os.path.basename(leftover)

    with OutputFiles() as outputs:
        fresh = outputs.partial(destination)
        assert not os.path.exists(leftover)
        write(fresh, "new content")
        outputs.commit()
    assert read(destination) == "new content"
    assert partial_folders(tmp_path) == []


# --------------------------------------------------------------------------- atomic_write


def test_atomic_write_replaces_on_success(tmp_path):
    path = write(tmp_path / "report.html", "old")
    os.chmod(path, 0o604)
    with atomic_write(path) as handle:
        handle.write("new ")
        assert read(path) == "old"
        handle.write("é")
    assert read(path) == "new é"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o604
    assert partial_folders(tmp_path) == []


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    path = write(tmp_path / "report.html", "old")
    with pytest.raises(ZeroDivisionError):
        with atomic_write(path) as handle:
            handle.write("half")
            1 / 0
    assert read(path) == "old"
    assert partial_folders(tmp_path) == []
    with pytest.raises(ZeroDivisionError):
        with atomic_write(tmp_path / "new.html") as handle:
            handle.write("half")
            1 / 0
    assert sorted(os.listdir(tmp_path)) == ["report.html"]


def test_atomic_write_new_file_gets_umask_bits_binary_and_newlines(tmp_path):
    previous = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "new.csv", newline="\r\n") as handle:
            handle.write("a\nb\n")
        with atomic_write(tmp_path / "blob.bin", mode="wb") as handle:
            handle.write(b"\x00\x01\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "new.csv").st_mode) == 0o640
    assert (tmp_path / "new.csv").read_bytes() == b"a\r\nb\r\n"
    assert (tmp_path / "blob.bin").read_bytes() == b"\x00\x01\n"


def test_atomic_write_to_a_missing_folder(tmp_path):
    with pytest.raises(BalancedSamplingError, match="Cannot write '.*out.csv': the folder '.*missing' does not exist"):
        with atomic_write(tmp_path / "missing" / "out.csv") as handle:
            handle.write("x")
    assert os.listdir(tmp_path) == []


def test_a_folder_output_may_exist_and_must_be_a_writable_folder(tmp_path):
    """A partitioned cache (FolderOutput) is added to: an existing folder passes where a file output is refused."""
    from balanced_sampling_plugin.embedding_cache import cache_output
    from balanced_sampling_plugin.file_safety import FolderOutput

    folder = tmp_path / "cache"
    folder.mkdir()
    check_paths({"PARQUET_PATH": cache_output(folder)})  # an existing folder: a partitioned cache
    check_paths({"PARQUET_PATH": cache_output(str(tmp_path / "new") + os.sep)})  # a new one, by its separator
    assert isinstance(cache_output(folder), FolderOutput) and not isinstance(cache_output(tmp_path / "c.parquet"),
                                                                           FolderOutput)
    with pytest.raises(BalancedSamplingError, match="is a folder; give a file name"):
        check_paths({"OUTPUT": str(folder)})  # any other output: refused as before
    (tmp_path / "file").write_text("x")
    with pytest.raises(BalancedSamplingError, match="is a file, not a folder"):
        check_paths({"PARQUET_PATH": FolderOutput(str(tmp_path / "file"))})
    with pytest.raises(BalancedSamplingError, match="both point to"):
        check_paths({"PARQUET_PATH": cache_output(folder), "OUTPUT": str(folder)})


def test_an_output_inside_a_folder_output_is_refused(tmp_path):
    """A partitioned cache folder holds only its parts: a CSV written inside it would break the next run."""
    from balanced_sampling_plugin.embedding_cache import cache_output

    folder = tmp_path / "emb"
    folder.mkdir()
    with pytest.raises(BalancedSamplingError, match=r"CSV '.*train.csv' is inside the folder of CACHE"):
        check_paths({"CACHE": cache_output(folder), "CSV": str(folder / "train.csv")})
    with pytest.raises(BalancedSamplingError, match="is inside the folder of CACHE"):  # either order
        check_paths({"CSV": str(folder / "sub" / "train.csv"), "CACHE": cache_output(folder)})
    check_paths({"CACHE": cache_output(folder), "CSV": str(tmp_path / "emb_train.csv")})  # beside it: fine


def test_files_under_lists_a_folder_and_nothing_for_a_hub_id(tmp_path):
    from balanced_sampling_plugin.file_safety import files_under

    (tmp_path / "model" / "sub").mkdir(parents=True)
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "model" / "sub" / "weights.bin").write_bytes(b"0")
    assert sorted(files_under(tmp_path / "model")) == [str(tmp_path / "model" / "config.json"),
                                                       str(tmp_path / "model" / "sub" / "weights.bin")]
    assert files_under("facebook/dinov2-small") == [] and files_under("") == [] and files_under(None) == []


def test_replacing_a_geopackage_moves_its_sqlite_journals_aside(tmp_path):
    """A -wal left beside a new GeoPackage would be replayed into it: the reader would see the old tables."""
    import sqlite3

    destination = tmp_path / "out.gpkg"
    old = sqlite3.connect(destination)  # as QGIS keeps a shown layer open, in WAL mode
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("PRAGMA wal_autocheckpoint=0")
    old.execute("CREATE TABLE old_rows(x)")
    old.executemany("INSERT INTO old_rows VALUES (?)", [(i,) for i in range(500)])
    old.commit()
    assert (tmp_path / "out.gpkg-wal").stat().st_size > 0
    (tmp_path / "other.gpkg-wal").write_text("not ours")  # another file's journal: untouched
    with OutputFiles() as outputs:
        new = sqlite3.connect(outputs.partial(destination))
        new.execute("CREATE TABLE fresh(y)")
        new.execute("INSERT INTO fresh VALUES (42)")
        new.commit()
        new.close()
        outputs.commit()
    reader = sqlite3.connect(destination)
    assert [row[0] for row in reader.execute("SELECT name FROM sqlite_master")] == ["fresh"]
    assert reader.execute("SELECT y FROM fresh").fetchall() == [(42,)]
    reader.close()
    old.close()
    assert (tmp_path / "other.gpkg-wal").read_text() == "not ours"


def test_a_failed_commit_puts_the_geopackage_journals_back(tmp_path, monkeypatch):
    import balanced_sampling_plugin.file_safety as file_safety

    destination = tmp_path / "out.gpkg"
    destination.write_bytes(b"old gpkg")
    (tmp_path / "out.gpkg-wal").write_bytes(b"old wal")
    other = tmp_path / "second.csv"
    real_replace = os.replace

    def failing_replace(source, target):
        if os.fspath(target) == str(other):
            raise OSError("disk full")
        return real_replace(source, target)

    with OutputFiles() as outputs:
        (open(outputs.partial(destination), "wb")).write(b"new gpkg")
        with open(outputs.partial(other), "w") as handle:
            handle.write("new csv")
        monkeypatch.setattr(file_safety.os, "replace", failing_replace)
        with pytest.raises((OSError, BalancedSamplingError)):
            outputs.commit()
        monkeypatch.setattr(file_safety.os, "replace", real_replace)
    assert destination.read_bytes() == b"old gpkg"
    assert (tmp_path / "out.gpkg-wal").read_bytes() == b"old wal"


def test_an_existing_file_of_another_kind_is_never_replaced(tmp_path):
    """A report over a training CSV, a CSV over a model's config.json: refused; a re-run over its own kind and a
    new file pass."""
    from balanced_sampling_plugin.file_safety import CSV_FILES, HTML_FILES, check_replaced_kind

    (tmp_path / "train.csv").write_text("image,mask\n")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "report.html").write_text("<html>")
    with pytest.raises(BalancedSamplingError, match=r"OUTPUT_REPORT '.*train\.csv' is an existing file of another "
                                                    r"kind \(the output writes \.html / \.htm\).*ending in \.html"):
        check_replaced_kind(str(tmp_path / "train.csv"), HTML_FILES, "OUTPUT_REPORT")
    with pytest.raises(BalancedSamplingError, match=r"config\.json' is an existing file of another kind"):
        check_replaced_kind(str(tmp_path / "config.json"), CSV_FILES, "csv_path")
    check_replaced_kind(str(tmp_path / "report.html"), HTML_FILES, "OUTPUT_REPORT")  # a re-run
    check_replaced_kind(str(tmp_path / "new.json"), CSV_FILES, "csv_path")  # nothing there yet
    check_replaced_kind(None, CSV_FILES) or check_replaced_kind("", CSV_FILES)
    assert (tmp_path / "train.csv").read_text() == "image,mask\n"
