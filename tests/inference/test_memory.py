"""hubkit.inference.memory: a hubkit process reuses the memory a batch frees instead of faulting it in afresh."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hubkit.cli import main
from hubkit.errors import ConfigError
from hubkit.inference.memory import MALLOC_ENV, MallocPolicy, _glibc, keep_freed_memory

glibc = pytest.mark.skipif(_glibc() is None, reason="the C library is not glibc: keep_freed_memory does nothing there")

# Page faults per cycle of allocating, touching and freeing a 64 MiB buffer (as a forward pass does with its
# activations) in a fresh process, after `setup`. glibc maps a block that large afresh every time (its mmap
# threshold stops at 32 MiB) and faults it in: 16,384 faults a cycle. Transparent huge pages are turned off for
# the process (PR_SET_THP_DISABLE): numpy asks for them, and how many it gets depends on the machine's memory
# fragmentation at the moment (the same process measured 543 and 33 faults a cycle beside a training run).
_CYCLES = """
import ctypes
import resource
import numpy as np
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)
{setup}
def cycle():
    a = np.empty(64 << 20, np.uint8)
    a[::4096] = 1
    del a
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    cycle()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def _faults(setup: str, env: dict[str, str]) -> float:
    full_env = {k: v for k, v in os.environ.items() if k != MALLOC_ENV and not k.startswith("MALLOC_")} | env
    out = subprocess.run([sys.executable, "-c", _CYCLES.format(setup=setup)], env=full_env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


KEEP = "from hubkit.inference import keep_freed_memory\nassert keep_freed_memory()"
CLI = "from hubkit.cli import main\nassert main(['zoo']) == 0"

# (case, setup code, environment, whether freed memory is reused)
CASES = [
    ("glibc's defaults", "", {}, False),
    ("keep_freed_memory()", KEEP, {}, True),
    ("a hubkit command's process", CLI, {}, True),
    ("a Dask worker: its MALLOC_TRIM_THRESHOLD_, then keep", KEEP, {"MALLOC_TRIM_THRESHOLD_": "65536"}, True),
    ("policy 'system' leaves glibc alone",
     "from hubkit.inference import keep_freed_memory\nassert not keep_freed_memory('system')", {}, False),
    ("$HUBKIT_MALLOC=system", "from hubkit.inference import keep_freed_memory\nassert not keep_freed_memory()",
     {MALLOC_ENV: "system"}, False),
    ("a hubkit command with $HUBKIT_MALLOC=system", CLI, {MALLOC_ENV: "system"}, False),
]


@glibc
@pytest.mark.parametrize("case, setup, env, reused", CASES, ids=[c[0] for c in CASES])
def test_freed_memory_reused(case, setup, env, reused):
    baseline = _faults("", {})
    assert baseline > 0
    faults = _faults(setup, env)
    if reused:
        assert faults < 0.05 * baseline, f"{case}: {faults:.0f} faults a cycle, glibc's defaults {baseline:.0f}"
    else:
        assert faults > 0.5 * baseline, f"{case}: {faults:.0f} faults a cycle, glibc's defaults {baseline:.0f}"


@pytest.mark.parametrize("policy, env, message", [
    ("bogus", None, r"policy 'bogus' is not a malloc policy; valid: keep, system"),
    ("KEEP", None, r"policy 'KEEP' is not a malloc policy"),
    (None, "heap", r"\$HUBKIT_MALLOC 'heap' is not a malloc policy; valid: keep, system"),
])
def test_unknown_policy_named(monkeypatch, policy, env, message):
    if env is not None:
        monkeypatch.setenv(MALLOC_ENV, env)
    with pytest.raises(ConfigError, match=message):
        keep_freed_memory(policy)


def test_cli_refuses_unknown_policy(monkeypatch, capsys):
    monkeypatch.setenv(MALLOC_ENV, "heap")
    assert main(["zoo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "$HUBKIT_MALLOC 'heap'" in err and "keep, system" in err


def test_system_policy_changes_nothing_here():
    assert keep_freed_memory(MallocPolicy.SYSTEM) is False
