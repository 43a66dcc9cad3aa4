"""Compile the NN-Descent kernels into numba's cache now, so that no kNN run pays for it.

``python -m balanced_sampling_plugin.nn_descent`` (run by ``make setup`` and by the plugin's package installer;
again after upgrading the plugin or numba). Prints what it did; exit status 1 when the kernels could not be
compiled or cached.
"""

from __future__ import annotations

import sys
import warnings

from ..i18n import _
from .. import nn_descent


def main() -> int:
    if not nn_descent.available():
        print(_("pynndescent is not installed: nothing to compile (the nndescent kNN backend builds its graph with "
                "faiss)."))
        return 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            compiled, seconds = nn_descent.warm_up()
        except Exception as exc:  # noqa: BLE001 - a command-line tool: say what failed, exit 1
            print(_("Could not compile the NN-Descent kernels: {error}").format(error=f"{type(exc).__name__}: {exc}"),
                  file=sys.stderr)
            return 1
    uncached = [str(w.message) for w in caught if "Cannot cache" in str(w.message)]
    if uncached:
        print(_("The NN-Descent kernels work but numba cannot cache them, so every run compiles them again (about a "
                "minute): {reason}. Set NUMBA_CACHE_DIR to a writable folder.").format(reason=uncached[0]),
              file=sys.stderr)
        return 1
    if compiled:
        print(_("Compiled the NN-Descent kernels in {seconds:.0f} s; numba keeps them in its cache for every later "
                "run.").format(seconds=seconds))
    else:
        print(_("The NN-Descent kernels are already compiled (loaded from numba's cache in {seconds:.1f} s).").format(
            seconds=seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
