"""The Dask engine: byte-identical to the in-process run, through killed workers and a killed driver."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hubkit.inference import PredictConfig, predict_folder
from hubkit.slides import write_slide
from tests.helpers import SeededSource, csv_file, smooth_image

pytest.importorskip("distributed", reason="the Dask engine needs the dask extra (pip install 'hubkit[dask]')")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: One torch thread in every process, as the byte-identity promise needs.
CFG = dict(device="cpu", torch_threads=1, tta="flip", amp=False, min_tissue=0.0)
SHAPES = {"s1": (160, 224), "s2": (288, 192), "s3": (224, 320), "s4": (128, 128)}


@pytest.fixture(scope="module")
def competition(tmp_path_factory):
    data = tmp_path_factory.mktemp("comp")
    (data / "test").mkdir()
    csv_file(data / "sample_submission.csv", ["id", "predicted"], [(i, "") for i in SHAPES])
    for k, (slide_id, shape) in enumerate(SHAPES.items()):
        write_slide(data / "test" / f"{slide_id}.tiff", smooth_image(shape, seed=k), tile=64)
    return data


@pytest.fixture(scope="module")
def reference(competition, tmp_path_factory):
    """The in-process run's submission bytes."""
    out = tmp_path_factory.mktemp("ref") / "sub.csv"
    result = predict_folder(competition, out, SeededSource().load(), PredictConfig(**CFG))
    assert result.ok == list(SHAPES)
    return out.read_bytes()


def _dask(competition, out, source=SeededSource(), **kw):
    from hubkit.inference.cluster import predict_folder_dask

    return predict_folder_dask(competition, out, source, PredictConfig(**CFG), workers=2, log=lambda _: None, **kw)


def test_two_workers_write_the_in_process_submission_byte_for_byte(competition, reference, tmp_path):
    result = _dask(competition, tmp_path / "sub.csv")
    assert result.ok == list(SHAPES) and not any(o.resumed for o in result.outcomes)
    assert (tmp_path / "sub.csv").read_bytes() == reference


def test_a_worker_killed_mid_slide_is_replaced_and_the_slide_rerun(competition, reference, tmp_path):
    marker = tmp_path / "killed-once"
    result = _dask(competition, tmp_path / "sub.csv", source=SeededSource(kill_marker=str(marker)))
    assert marker.exists()  # a worker did die (SIGKILL, as the OOM killer sends)
    assert result.failed == []
    assert (tmp_path / "sub.csv").read_bytes() == reference


DRIVER = textwrap.dedent("""
    import sys
    from hubkit.inference import PredictConfig
    from hubkit.inference.cluster import predict_folder_dask
    from tests.helpers import SeededSource
    predict_folder_dask(sys.argv[1], sys.argv[2], SeededSource(sleep_s=float(sys.argv[3])),
                        PredictConfig(**eval(sys.argv[4])), workers=1, log=print)
""")


def test_a_killed_driver_resumes_from_its_parts(competition, reference, tmp_path):
    out = tmp_path / "sub.csv"
    parts = tmp_path / ".sub.csv.parts"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(competition), str(out), "0.4", repr(CFG)],
                              cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not list(parts.glob("s*.json")) and time.time() < deadline and driver.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and its local cluster, at once
        driver.wait()
    finished = sorted(p.stem for p in parts.glob("s*.json"))
    assert 1 <= len(finished) < len(SHAPES), finished
    result = _dask(competition, out)
    assert sorted(o.slide_id for o in result.outcomes if o.resumed) == finished
    assert out.read_bytes() == reference


@pytest.mark.parametrize("change, what", [
    (dict(tta="none"), "config"),
    (dict(overlap=0.5), "config"),
])
def test_parts_of_another_run_are_refused_unless_fresh(competition, tmp_path, change, what):
    from hubkit.errors import SubmissionError
    from hubkit.inference.cluster import predict_folder_dask
    from hubkit.inference.parts import Manifest, PartStore

    out = tmp_path / "sub.csv"
    ids = list(SHAPES)
    PartStore(out, Manifest.of("hubmap2021", PredictConfig(**CFG).fingerprint(), SeededSource().cards(), ids))
    cfg = PredictConfig(**{**CFG, **change})
    with pytest.raises(SubmissionError, match=f"parts of an earlier run with another {what}; rerun with --fresh"):
        predict_folder_dask(competition, out, SeededSource(), cfg, workers=1, log=lambda _: None)
    other_models = SeededSource(seed=1)
    with pytest.raises(SubmissionError, match="another models"):
        predict_folder_dask(competition, out, other_models, PredictConfig(**CFG), workers=1, log=lambda _: None)


def test_importing_inference_does_not_import_dask():
    code = "import sys, hubkit.inference, hubkit.cli.main; print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_the_command_line_engines_agree_on_the_starter_model(competition, tmp_path):
    from hubkit.cli import main

    flags = ["--torch-threads", "1", "--device", "cpu", "--tta", "none", "--quiet"]
    assert main(["predict", str(competition), "--out", str(tmp_path / "local.csv"), *flags]) == 0
    assert main(["predict", str(competition), "--out", str(tmp_path / "dask.csv"), "--engine", "dask",
                 "--workers", "2", *flags]) == 0
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert (tmp_path / ".dask.csv.parts" / "manifest.json").is_file()


def test_a_local_cluster_listens_on_loopback_only():
    import psutil

    from hubkit.inference.cluster import local_cluster

    with local_cluster(workers=1):
        me = psutil.Process()
        pids = {me.pid, *(p.pid for p in me.children(recursive=True))}
        listening = [c.laddr for c in psutil.net_connections(kind="inet") if c.status == "LISTEN" and c.pid in pids]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
