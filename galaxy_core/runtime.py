"""TensorFlow's import, without its C++ start-up lines on the terminal or in the server log unless asked for.

TF_CPP_MIN_LOG_LEVEL=2 hides TensorFlow's own INFO and WARNING lines, but not the few that Abseil writes before its
logging is initialised ("All log messages before absl::InitializeLog() ...", oneDNN's notice): those go straight
to file descriptor 2, so the import runs with that descriptor pointed at /dev/null."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

_lock = threading.Lock()


@contextlib.contextmanager
def _stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow(*, verbose: bool = False):
    """Import TensorFlow and Keras once, quietly unless `verbose`; the module. Errors still raise (and are shown)."""
    with _lock:
        if "tensorflow" in sys.modules or verbose:
            import tensorflow

            return tensorflow
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with _stderr_silenced():
            import keras  # noqa: F401
            import tensorflow
        return tensorflow
