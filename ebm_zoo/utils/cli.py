"""What every tools/*.py shares: a quiet start, one-line errors, `--verbose`/`--debug`.

    from ebm_zoo.utils import cli
    cli.quiet_startup()             # first thing in a tool, before TensorFlow is imported
    from absl import app, flags
    ...
    if __name__ == "__main__":
        cli.run(main)

Without `--verbose` (or `--debug`) a tool shows only what it says: TensorFlow's C++ log
(CUDA probing, oneDNN notices, grappler messages), absl / TF Python warnings and Keras
warnings are silenced. A bad flag or an `EbmZooError` prints one line `error: ...` to stderr
and exits with status 2 (bad flag) or 1 (bad input); any other exception prints one line
naming its type and exits 1. `--verbose` / `--debug` restores the logs and shows tracebacks.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import os
import sys
import warnings

_DEBUG_FLAGS = ("--debug", "--verbose", "--debug=true", "--verbose=true", "--debug=1", "--verbose=1")


def wants_debug(argv: list[str] | None = None, *, verbose_is_debug: bool = True) -> bool:
    """True when the command line asks for logs and tracebacks."""
    argv = sys.argv[1:] if argv is None else argv
    names = _DEBUG_FLAGS if verbose_is_debug else tuple(a for a in _DEBUG_FLAGS if "debug" in a)
    return any(a.lower() in names for a in argv)


def quiet_startup(argv: list[str] | None = None, *, verbose_is_debug: bool = True) -> bool:
    """Silences TF / absl / Keras log noise unless --verbose/--debug is given; returns debug.

    Must run before TensorFlow is imported (TF reads TF_CPP_MIN_LOG_LEVEL at import). TF itself
    is imported (quietly) by `run` after the flags parsed, so a bad flag or --help costs no TF
    import; a tool that imports TF at module level calls `import_tensorflow_quietly()` first.
    """
    debug = wants_debug(argv, verbose_is_debug=verbose_is_debug)
    if debug:
        return True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++: only FATAL (hides cuInit, oneDNN, grappler)
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    quiet_python_logs()
    return False


def import_tensorflow_quietly(python_logs: bool = True) -> None:
    """Imports TensorFlow with the process's stderr (fd 2) sent to /dev/null.

    TF's shared libraries log at load time ("All log messages before absl::InitializeLog() ...",
    oneDNN and CUDA-stub notices) before TF_CPP_MIN_LOG_LEVEL is read, so the only way to keep
    them off a user's screen is to silence the file descriptor while the import runs. Errors
    raised by the import are Python exceptions and still reach the caller. `python_logs=False`
    leaves Python's warnings and loggers as they are (library code, not a tool's start).
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(devnull)
    finally:
        os.close(saved)
    if python_logs:
        quiet_python_logs()


def tf_logs_quiet() -> bool:
    """True when TensorFlow's C++ log is asked to be quiet (TF_CPP_MIN_LOG_LEVEL >= 2, as
    `quiet_startup` and the tests set it): code that is about to import TensorFlow then does so
    through `import_tensorflow_quietly`, so the load-time lines stay off the screen too."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")) >= 2
    except ValueError:
        return False


def quiet_python_logs() -> None:
    """absl / TF Python loggers to ERROR, Python warnings off (TF need not be imported yet)."""
    import logging

    warnings.filterwarnings("ignore")
    for name in ("tensorflow", "absl", "keras", "h5py", "tensorflow_datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
        absl_logging.set_stderrthreshold("error")
    except ImportError:
        pass


_HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")


def fail(message: str, code: int = 1) -> None:
    """Prints one `error: ...` line to stderr and exits with `code`."""
    text = " ".join(str(message).split())
    print(f"error: {text}", file=sys.stderr)
    sys.exit(code)


def _flags_parser(extra=None):
    from absl import flags

    def parse(argv):
        try:
            if extra is not None:
                argv = extra(argv)
            return flags.FLAGS(argv)
        except flags.Error as e:
            fail(f"{e} (see --help)", code=2)
        except SystemExit as e:  # absl exits 1 after printing --help; asking for help is no error
            if e.code == 1 and any(a.split("=")[0] in _HELP_FLAGS for a in argv[1:]):
                sys.exit(0)
            raise
        except Exception as e:  # an EbmZooError or app.UsageError from `extra`
            fail(str(e), code=2)

    return parse


#: With this set (to anything but ''), `run` parses the flags, runs the tool's `check` (if any),
#: prints "flags ok" and exits 0 without running it: tests/test_readme_commands.py uses it so
#: that every command in the README is checked against the real flags.
CHECK_FLAGS_ENV = "EBM_ZOO_CHECK_FLAGS_ONLY"


def run(
    main, *, flags_parser=None, debug_flag: str | None = "verbose", check=None, tensorflow: bool = True
) -> None:
    """`absl.app.run(main)` with one-line errors (see the module docstring).

    Args:
      main: the tool's main(argv).
      flags_parser: optional argv -> argv pre-processing (e.g. pulling out --config.* overrides).
      debug_flag: name of the boolean flag that shows tracebacks, defined here when the tool has
        none ("verbose"; tools whose --verbose means something else pass None). --debug is
        always defined as well.
      check: optional cheap validation of the parsed flags (no TF work), run before main and
        alone when $EBM_ZOO_CHECK_FLAGS_ONLY is set.
      tensorflow: import TensorFlow (quietly) before main; False for tools that never use it
        (saves seconds per call).
    """
    from absl import app, flags

    FLAGS = flags.FLAGS
    tool = sys.argv[0]  # absl's --help lists the flags of this module
    if "debug" not in FLAGS:
        flags.DEFINE_bool("debug", False, "Show TensorFlow logs and Python tracebacks.", module_name=tool)
    if debug_flag and debug_flag not in FLAGS:
        flags.DEFINE_bool(
            debug_flag, False, "Show TensorFlow logs and Python tracebacks (= --debug).", module_name=tool
        )

    def debug_on() -> bool:
        for name in ("debug", debug_flag):
            if name and name in FLAGS and FLAGS[name].present and isinstance(FLAGS[name].value, bool):
                if FLAGS[name].value:
                    return True
        return False

    def body(argv, quiet: bool):
        if check is not None:
            check()  # cheap and TF-free: a bad value costs no TensorFlow import
        if os.environ.get(CHECK_FLAGS_ENV):
            print("flags ok")
            return None
        if quiet and tensorflow:
            import_tensorflow_quietly()
        return main(argv)

    def guarded(argv):
        if debug_on():
            return body(argv, quiet=False)
        from ebm_zoo.utils.checks import EbmZooError

        try:
            return body(argv, quiet=True)
        except EbmZooError as e:
            fail(str(e))
        except app.UsageError as e:
            fail(f"{e} (see --help)", code=2)
        except KeyboardInterrupt:
            fail("interrupted", code=130)
        except MemoryError:
            fail("out of memory; use smaller sizes (rerun with --verbose for the traceback)")
        except Exception as e:  # noqa: BLE001 - one line for anything unexpected; --verbose shows more
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            fail(f"{type(e).__name__}: {msg[:300]} (rerun with --verbose for the traceback)")

    app.run(guarded, flags_parser=_flags_parser(flags_parser))
