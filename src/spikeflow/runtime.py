"""Process tuning for fast CPU runs: one explicit, opt-in call (see docs/runtime.md).

``import spikeflow`` changes nothing in the process: no environment variable, no thread count, no
fork hook, no file. :func:`configure` does the tuning that the ``spikeflow`` CLI and the
benchmarks apply at start and that your own scripts may apply too::

    import spikeflow.runtime
    spikeflow.runtime.configure()          # before `import torch` (see "OpenMP spin-wait")
    import torch

It sets three things; :func:`settings` reads back what is in effect.

**OpenMP spin-wait** (``omp_spin``). After every parallel operation, libgomp's worker threads
(torch's CPU thread pool in Linux builds) keep spinning before they sleep: by default about 8 ms
on the 2-core AMD Zen 4 VM we measure on, after *every* torch op. The fused neuron kernels usually
run right after a torch op (a convolution, a batch norm), on their own threads, and then share the
cores with a spinning worker: the LIF forward+backward (T=32, 262,144 neurons, two threads) took
9.5 instead of 7.2 ms. With ``GOMP_SPINCOUNT=30000`` the workers spin about 0.8 ms, still far
longer than the gap between two back-to-back torch ops, so torch's own speed is unchanged
(measured: the reference loop and SpikingJelly, both a torch op per step, ran as fast as before)
while the fused kernels get the cores. (``OMP_WAIT_POLICY=passive``, no spinning at all, made the
torch loops 2.5x slower.) libgomp reads the variable once, when torch loads it: ``omp_spin`` only
takes effect when :func:`configure` runs before ``import torch``; afterwards it warns and changes
nothing. The variable stays in ``os.environ``, so child processes inherit it. A
``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` set by the user is never overridden.

**Threads** (``threads``). ``torch.set_num_threads(threads)``; spikeflow's fused kernels follow
``torch.get_num_threads()`` too. ``None`` leaves torch's default (all cores).

**numba cache** (``numba_cache``). numba compiles the fused CPU kernels on their first call
(seconds) and caches the machine code on disk. spikeflow keeps that cache out of the installed
package, in ``<numba_cache>/numba-<version>-<digest>/`` where the digest covers the kernels'
shared sources (a change there makes a new folder, so a kernel never loads code compiled from old
sources). Default root: ``$NUMBA_CACHE_DIR/spikeflow`` if the user set ``NUMBA_CACHE_DIR``, else
``$SPIKEFLOW_CACHE_DIR``, ``$XDG_CACHE_HOME/spikeflow`` or ``~/.cache/spikeflow``. ``None``:
numba's own locations. The folder is chosen when the kernels are first loaded (not on import);
if it cannot be created or written, numba's own behaviour applies.
"""
from __future__ import annotations

import os
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Optional, Union

__all__ = ["RuntimeSettings", "configure", "settings", "default_numba_cache", "SPIN_COUNT",
           "DEFAULT"]

#: ``GOMP_SPINCOUNT`` for ``omp_spin="short"`` (about 0.8 ms of spinning, see the module docstring)
SPIN_COUNT = 30000
_USER_OMP = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")

OmpSpin = Union[Literal["short", "default"], int]
PathLike = Union[str, "os.PathLike[str]"]


class _Default:
    """Type of :data:`DEFAULT`."""

    def __repr__(self) -> str:
        return "DEFAULT"


#: ``configure(numba_cache=DEFAULT)``: the folder :func:`default_numba_cache` names
DEFAULT: Final = _Default()


def default_numba_cache() -> Path:
    """The default root of spikeflow's numba caches (see the module docstring), from the
    environment at the time of the call."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]).expanduser() / "spikeflow"
    if os.environ.get("SPIKEFLOW_CACHE_DIR"):
        return Path(os.environ["SPIKEFLOW_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spikeflow"


@dataclass(frozen=True)
class RuntimeSettings:
    """What :func:`configure` set, or what is in effect when it was never called.

    Attributes:
        configured: whether :func:`configure` has been called in this process.
        omp_spin: the requested spin-wait (``"short"``, ``"default"`` or a spin count).
        gomp_spincount: ``GOMP_SPINCOUNT`` in ``os.environ`` now (``None``: unset).
        omp_spin_applied: whether the requested spin-wait is what torch's OpenMP runtime uses
            (set before torch was imported, or already the user's value).
        omp_spin_note: why not, when it is not (user setting kept, torch already imported).
        threads: the thread count :func:`configure` set (``None``: left to torch).
        numba_cache: root folder of spikeflow's numba caches (``None``: numba's own locations).
    """

    configured: bool
    omp_spin: OmpSpin
    gomp_spincount: Optional[str]
    omp_spin_applied: bool
    omp_spin_note: str
    threads: Optional[int]
    numba_cache: Optional[Path]


_lock = threading.RLock()
_configured = False
_omp_spin: OmpSpin = "default"
_omp_applied = True
_omp_note = "configure() not called: OpenMP's default spin-wait"
_threads: Optional[int] = None
_numba_cache: Optional[Path] = None
_numba_cache_set = False  # False: default_numba_cache() at the time of the question
_spin_set_by_us: Optional[str] = None


def _spin_value(omp_spin: OmpSpin) -> Optional[str]:
    if omp_spin == "short":
        return str(SPIN_COUNT)
    if omp_spin == "default":
        return None
    if isinstance(omp_spin, int) and not isinstance(omp_spin, bool) and omp_spin >= 0:
        return str(omp_spin)
    raise ValueError(f"omp_spin must be 'short', 'default' or a spin count >= 0, got {omp_spin!r}")


def _apply_omp_spin(omp_spin: OmpSpin) -> tuple[bool, str]:
    """Set ``GOMP_SPINCOUNT`` if it can still take effect; ``(applied, note)``."""
    global _spin_set_by_us
    want = _spin_value(omp_spin)
    current = os.environ.get("GOMP_SPINCOUNT")
    if want is None:
        return True, "omp_spin='default': GOMP_SPINCOUNT left as it is"
    if current == want:
        return True, f"GOMP_SPINCOUNT={want}"
    user = [f"{k}={os.environ[k]}" for k in _USER_OMP
            if k in os.environ and not (k == "GOMP_SPINCOUNT" and current == _spin_set_by_us)]
    if user:
        return False, f"kept the user's {' '.join(user)}"
    if "torch" in sys.modules:
        note = (f"torch was imported before spikeflow.runtime.configure(): GOMP_SPINCOUNT={want} "
                "would have no effect now (libgomp reads it when torch loads); call configure() "
                f"before `import torch` or export GOMP_SPINCOUNT={want}; the fused CPU kernels may "
                "run up to ~1.3x slower after torch ops")
        warnings.warn(f"spikeflow: {note}", RuntimeWarning, stacklevel=3)
        return False, note
    os.environ["GOMP_SPINCOUNT"] = want
    _spin_set_by_us = want
    return True, f"GOMP_SPINCOUNT={want}"


def _kernels_loaded_elsewhere(root: Optional[Path]) -> bool:
    """Whether kernels already loaded cache in another folder than ``root`` would give."""
    module = sys.modules.get("spikeflow._numba_cache")
    roots = getattr(module, "roots_in_use", lambda: set())()
    return bool(roots) and roots != {root}


def configure(*, threads: Optional[int] = None, omp_spin: OmpSpin = "short",
              numba_cache: Union[PathLike, None, _Default] = DEFAULT) -> RuntimeSettings:
    """Tune this process for spikeflow's CPU kernels; call it first, before ``import torch``.

    Args:
        threads: ``torch.set_num_threads(threads)`` (>= 1); ``None`` leaves torch's default.
            Imports torch (after the spin-wait is set).
        omp_spin: ``"short"`` sets ``GOMP_SPINCOUNT=30000`` (:data:`SPIN_COUNT`, about 0.8 ms of
            spinning instead of ~8 ms), an ``int`` sets that spin count, ``"default"`` leaves
            OpenMP's. Takes effect only before torch is imported (warns otherwise, once per
            call); never overrides a user's ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``.
        numba_cache: root folder of spikeflow's numba kernel caches; :data:`DEFAULT`:
            :func:`default_numba_cache` (read when kernels load); ``None``: numba's own
            locations. Applies to kernels loaded after the call (an explicit folder warns if
            kernels already loaded use another one).

    Returns:
        The settings now in effect (as :func:`settings`).

    Raises:
        ValueError: ``threads`` < 1 or an unknown ``omp_spin``.
    """
    global _configured, _omp_spin, _omp_applied, _omp_note, _threads
    global _numba_cache, _numba_cache_set
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be an int >= 1 or None, got {threads!r}")
    _spin_value(omp_spin)  # validate before changing anything
    with _lock:
        _omp_applied, _omp_note = _apply_omp_spin(omp_spin)
        _omp_spin = omp_spin
        if isinstance(numba_cache, _Default):
            _numba_cache, _numba_cache_set = None, False
        else:
            _numba_cache = None if numba_cache is None else Path(numba_cache).expanduser()
            _numba_cache_set = True
        root = _current_numba_cache()
        if not isinstance(numba_cache, _Default) and _kernels_loaded_elsewhere(root):
            warnings.warn("spikeflow: fused kernels were already loaded before "
                          "spikeflow.runtime.configure(numba_cache=...); they keep their cache "
                          "folder, kernels loaded from now on use "
                          f"{root if root is not None else 'numba default locations'}",
                          RuntimeWarning, stacklevel=2)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        _threads = threads
        _configured = True
        return settings()


def _current_numba_cache() -> Optional[Path]:
    return _numba_cache if _numba_cache_set else default_numba_cache()


def settings() -> RuntimeSettings:
    """The runtime settings in effect (see :class:`RuntimeSettings`); changes nothing."""
    with _lock:
        return RuntimeSettings(configured=_configured, omp_spin=_omp_spin,
                               gomp_spincount=os.environ.get("GOMP_SPINCOUNT"),
                               omp_spin_applied=_omp_applied, omp_spin_note=_omp_note,
                               threads=_threads, numba_cache=_current_numba_cache())
