"""A folder nobody can write, not even root (the tests and CI run as root, which ignores permission bits)."""

import contextlib
import os
import shutil
import subprocess

import pytest


@contextlib.contextmanager
def read_only_folder(folder, files=(), populate=None):
    """Yield ``folder`` holding copies of ``files`` (and what ``populate(folder)`` writes), mounted
    read-only (root) or with its write bits removed (other users). Skips the test when neither can be done."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)

    def fill():
        for path in files:
            shutil.copy(path, folder)
        if populate is not None:
            populate(folder)

    if os.geteuid() != 0:
        fill()
        os.chmod(folder, 0o555)
        try:
            yield folder
        finally:
            os.chmod(folder, 0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", folder], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("root ignores permission bits and this machine refuses 'mount', so no read-only folder "
                    f"can be made: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        fill()
        remount = subprocess.run(["mount", "-o", "remount,ro", folder], capture_output=True)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount the tmpfs read-only: {remount.stderr.decode(errors='replace').strip()}")
        yield folder
    finally:
        subprocess.run(["umount", "-l", folder], capture_output=True)
