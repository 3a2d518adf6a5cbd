"""glibc's heap on a CPU run: keep the memory a forward pass frees for the next one.

A U-Net's forward (and backward) pass allocates activation buffers of a few to a few hundred MiB
and frees them before the next batch. glibc serves a block above its mmap threshold (128 KiB,
raised by the blocks freed, to at most 32 MiB) with a fresh ``mmap`` and unmaps it on free, and
trims the heap's top once more than twice that lies free, so every batch faults its buffers in
again, page by page, each page zeroed by the kernel. Dask workers are worse off: Dask sets
``MALLOC_TRIM_THRESHOLD_``, which fixes the threshold at 128 KiB.

`keep_freed_memory` turns both off (``mallopt``: ``M_MMAP_MAX`` 0, so every block comes from the
heap, blocks too large for a thread's arena from the main one; ``M_TRIM_THRESHOLD`` 2 GiB - 1), so
freed blocks are reused. Measured on the 2-core box (``bench/bench_malloc.py``: the default soup,
bf16 + channels-last, glibc 2.36, each case in its own process): a forward pass of one 512 px tile
0.077 -> 0.055 s, of four 0.37 -> 0.20 s (page faults 114,000 -> 1,200 a batch), a training step of
32 crops of 320 px 6.1 -> 4.0 s (kernel time 4.1 -> 1.0 s); peak RSS unchanged for inference, +12%
for training (4.8 -> 5.4 GiB). Whole slides: ``bench/bench_predict.py`` (``hubkit`` against
``hubkit-glibc``). The price: the process's resident memory stays near its peak between batches
instead of falling back.

``hubkit`` commands, the Kaggle submission run and Dask workers call it; a script calling the
library calls it once at its start. ``HUBKIT_MALLOC=system`` leaves glibc's settings alone.
Elsewhere than glibc (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys
from enum import Enum
from typing import Optional, Union

from hubkit.errors import ConfigError

__all__ = ["MallocPolicy", "keep_freed_memory", "MALLOC_ENV"]

#: The environment variable that chooses the policy (a `MallocPolicy` value; default ``keep``).
MALLOC_ENV = "HUBKIT_MALLOC"

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt(3) parameters (glibc's malloc.h)
_INT_MAX = 2**31 - 1


class MallocPolicy(str, Enum):
    """What `keep_freed_memory` does to glibc's malloc."""

    KEEP = "keep"  # no mmap'd blocks, no trimming: freed memory is reused by the next batch
    SYSTEM = "system"  # glibc's own settings (or what the environment's MALLOC_* variables set)


def _glibc() -> Optional[ctypes.CDLL]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def keep_freed_memory(policy: Union[MallocPolicy, str, None] = None) -> bool:
    """Set this process's glibc malloc to keep and reuse freed memory (see the module docstring).

    Args:
        policy: a `MallocPolicy` or its value; None reads ``$HUBKIT_MALLOC`` (default ``keep``).

    Returns:
        True when glibc's settings were changed; False for ``system`` or where the C library is
        not glibc.

    Raises:
        ConfigError: an unknown policy, naming the valid ones and where it came from.
    """
    where = "policy"
    if policy is None:
        policy, where = os.environ.get(MALLOC_ENV, MallocPolicy.KEEP.value), f"${MALLOC_ENV}"
    try:
        policy = MallocPolicy(policy)
    except ValueError:
        valid = ", ".join(p.value for p in MallocPolicy)
        raise ConfigError(f"{where} {policy!r} is not a malloc policy; valid: {valid}") from None
    if policy is MallocPolicy.SYSTEM:
        return False
    libc = _glibc()
    if libc is None:
        return False
    mmap_off = libc.mallopt(_M_MMAP_MAX, 0)
    trim_off = libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX)
    return bool(mmap_off and trim_off)
