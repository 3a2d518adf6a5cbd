"""Many slides on Dask: one task per slide, on a local cluster or one the user started.

`predict_folder_dask` is `hubkit.inference.predict_folder` spread over Dask ``distributed``
workers (``hubkit predict --engine dask``), the engine HistomicsTK uses for whole-slide work:

* one task per slide, largest first; each worker process loads the models once (from a
  `hubkit.models.ZooSource`, or any object with ``cards()`` and ``load(device)`` that pickles)
  and keeps them for its next slides;
* the driver is the only writer: each finished slide's row is kept as a part
  (`hubkit.inference.parts`) and the submission rewritten atomically in sample order, so the file
  does not depend on which worker finished first, and it is byte-identical to an in-process run
  with the same settings;
* a worker that dies mid-slide (out of memory, killed) is restarted by its nanny and the slide
  rerun elsewhere, up to ``retries`` times (Dask's ``allowed-failures``);
* a driver that dies leaves its parts: a rerun with the same manifest predicts only the slides
  without one; with another config or other models it refuses (``fresh=True`` starts over).

``distributed`` is an optional extra (``pip install hubkit[dask]``), imported only here; Kaggle's
image has it. A local cluster listens on loopback only and has no dashboard.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from hubkit.errors import ConfigError
from hubkit.formats.base import CompetitionFormat
from hubkit.formats.registry import get_format
from hubkit.inference.config import PredictConfig
from hubkit.inference.memory import keep_freed_memory
from hubkit.inference.parts import Manifest, PartStore
from hubkit.inference.runner import FolderResult, SlideOutcome, SubmissionWriter, largest_first, predict_one

__all__ = ["predict_folder_dask", "map_tasks", "worker_models", "local_cluster"]

#: Models loaded in this (worker) process, by source: each worker loads them once.
_LOADED: dict = {}


def worker_models(source, cfg: PredictConfig):
    """On a worker: the ensemble of ``source`` on the config's device, loaded on first use and kept
    for the worker's next tasks (and the worker's threads and heap set up for inference)."""
    cfg.apply_threads()
    if source not in _LOADED:
        keep_freed_memory()  # Dask's MALLOC_TRIM_THRESHOLD_ would map every tile's buffers afresh
        _LOADED[source] = source.load(str(cfg.torch_device()))
    return _LOADED[source]


def _slide_task(data_dir: str, slide_id: str, fmt_name: str, source, cfg: PredictConfig) -> tuple[SlideOutcome, list[str]]:
    """Run on a worker: predict one slide; returns its outcome and the lines it logged."""
    lines: list[str] = []
    ensemble = worker_models(source, cfg)
    return predict_one(data_dir, slide_id, get_format(fmt_name), ensemble, cfg, lines.append), lines


def _import_distributed():
    try:
        import dask
        import distributed
    except ImportError:
        raise ConfigError("--engine dask needs Dask: pip install 'hubkit[dask]' (dask[distributed])") from None
    return dask, distributed


@contextmanager
def local_cluster(workers: Optional[int] = None, retries: int = 3) -> Iterator:
    """A Dask client of a new cluster on this machine: ``workers`` processes of one thread each
    (default: one per core), on loopback, no dashboard; closed on exit."""
    dask, distributed = _import_distributed()
    n = workers or os.cpu_count() or 1
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
            with distributed.Client(cluster) as client:
                yield client


@contextmanager
def _client(workers: Optional[int], scheduler: Optional[str], retries: int) -> Iterator:
    if scheduler:
        _, distributed = _import_distributed()
        with distributed.Client(scheduler) as client:  # its retries are the scheduler's own config
            yield client
    else:
        with local_cluster(workers, retries) as client:
            yield client


def predict_folder_dask(data_dir, out_csv, source, cfg: Optional[PredictConfig] = None,
                        fmt: "CompetitionFormat | str" = "hubmap2021", workers: Optional[int] = None,
                        scheduler: Optional[str] = None, retries: int = 3, fresh: bool = False,
                        log: Callable[[str], None] = print, client=None) -> FolderResult:
    """Predict every slide of a competition folder into ``out_csv`` on Dask workers.

    Args:
        data_dir: the competition folder; every worker must see it at this path.
        out_csv: the submission (valid at every moment, as with `predict_folder`).
        source: where the models come from (`hubkit.models.ZooSource`); loaded on each worker.
        cfg: inference settings (``device`` is each worker's).
        fmt: a competition format or its name.
        workers: processes of a local cluster (default: one per core); ignored with ``scheduler``.
        scheduler: the address of a running scheduler (``tcp://host:8786``) instead of a local cluster.
        retries: how many workers may die on one slide before it fails.
        fresh: discard the parts of an earlier run instead of resuming from them.
        log: where per-slide lines go.
        client: a Dask client to use as it is (its cluster's settings apply).

    Returns:
        Every slide's outcome in submission order; slides resumed from parts have ``resumed`` set.

    Raises:
        SubmissionError: parts of an earlier run made with other settings or models.
        ConfigError: Dask is not installed.
    """
    fmt = get_format(fmt)
    cfg = cfg or PredictConfig()
    data_dir = str(Path(data_dir).resolve())
    ids = fmt.read_ids(data_dir)
    store = PartStore(out_csv, Manifest.of(fmt.name, cfg.fingerprint(), source.cards(), ids), fresh=fresh)
    done = store.rows()
    writer = SubmissionWriter(fmt, out_csv, ids, fmt.placeholders(data_dir, ids), rows=done)
    outcomes = {i: SlideOutcome(i, resumed=True) for i in done}
    todo = [i for i in largest_first(fmt, data_dir, ids) if i not in done]
    if done:
        log(f"hubkit: resuming: {len(done)} of {len(ids)} slides already predicted ({store.folder})")
    if todo:
        _run(client, todo, data_dir, fmt, source, cfg, store, writer, outcomes, log, workers, scheduler, retries)
    return FolderResult(writer.path, [outcomes[i] for i in ids])


def map_tasks(fn: Callable, items: Sequence, names: Optional[Sequence[str]] = None, *, workers: Optional[int] = None,
              scheduler: Optional[str] = None, retries: int = 3, client=None) -> Iterator[tuple[int, Any, Optional[str]]]:
    """Run ``fn(item)`` for every item on Dask workers, first items first, as results arrive.

    The engine of every many-slide job (prediction, analysis, tile preparation): ``fn`` and the
    items must pickle; a worker that dies is replaced and its task rerun up to ``retries`` times.

    Args:
        fn: a module-level function (workers import it by name).
        items: its arguments, in priority order.
        names: a label per item for the task keys (default: the item's number).
        workers, scheduler, retries, client: the cluster, as in `predict_folder_dask`.

    Yields:
        ``(index of the item, result, None)``, or ``(index, None, "ErrorType: message")`` for a
        task that raised or whose workers kept dying.
    """
    _, distributed = _import_distributed()
    run = uuid.uuid4().hex[:8]
    names = [str(k) for k in range(len(items))] if names is None else list(names)
    with nullcontext(client) if client is not None else _client(workers, scheduler, retries) as c:
        futures = {c.submit(fn, item, key=f"hubkit-{run}-{name}", priority=len(items) - k, pure=False): k
                   for k, (item, name) in enumerate(zip(items, names))}
        for future in distributed.as_completed(futures):
            try:
                yield futures[future], future.result(), None
            except Exception as err:  # noqa: BLE001 - the task raised, or its workers kept dying (KilledWorker)
                yield futures[future], None, f"{type(err).__name__}: {err}"


def _run(client, todo, data_dir, fmt, source, cfg, store: PartStore, writer: SubmissionWriter, outcomes, log,
         workers, scheduler, retries) -> None:
    task = functools.partial(_slide_task, data_dir, fmt_name=fmt.name, source=source, cfg=cfg)
    done = map_tasks(task, todo, todo, workers=workers, scheduler=scheduler, retries=retries, client=client)
    for k, result, error in done:
        slide_id = todo[k]
        if error is None:
            outcome, lines = result
        else:
            outcome = SlideOutcome(slide_id, error=error)
            lines = [f"hubkit: slide {slide_id} failed, written empty: {error}"]
        for line in lines:
            log(line)
        if outcome.prediction is not None:
            store.add(slide_id, outcome.prediction.output)
        outcomes[slide_id] = outcome
        writer.add(outcome)
