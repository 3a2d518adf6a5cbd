from hubkit.kaggle import KaggleInputs, find_inputs


def test_find_inputs_walks_any_mount_layout(tmp_path):
    comp = tmp_path / "competitions" / "hubmap-kidney-segmentation"
    (comp / "test").mkdir(parents=True)
    (comp / "sample_submission.csv").write_text("id,predicted\n")
    wheels = tmp_path / "datasets" / "me" / "hubkit-wheels" / "versions" / "3"
    wheels.mkdir(parents=True)
    (wheels / "hubkit-0.1.0-py3-none-any.whl").write_bytes(b"")
    for name in ("a", "b"):
        (tmp_path / "models" / "me" / "zoo" / name).mkdir(parents=True)
        (tmp_path / "models" / "me" / "zoo" / name / "card.json").write_text("{}")
    found = find_inputs(tmp_path)
    assert found == KaggleInputs(comp, wheels, tmp_path / "models" / "me" / "zoo")
