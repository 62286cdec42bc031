"""SPAI detector: parity with the official code on the spai-tiny fixture, loading, bad input."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from spai.__main__ import cli
from spai.checkpoint import CheckpointError, extract_state_dict, load_state, read_checkpoint
from spai.config import load_config
from spai.detector import Detector
from core.imageio import ImageLoadError, open_rgb, resolve_under_root
from spai.model import build_model
from spai.spectral import frequency_mask
from tiny_model import TINY_CFG, TINY_DIR, TINY_IMAGES, TINY_WEIGHTS

TOL = 1e-5


@pytest.fixture(scope="module")
def det() -> Detector:
    torch.manual_seed(0)
    return Detector.load(TINY_WEIGHTS, TINY_CFG, "cpu")


def _expected() -> list[dict[str, str]]:
    with open(TINY_DIR / "expected_scores.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("row", _expected(), ids=lambda r: r["image"])
def test_parity_with_official_scores(det: Detector, row: dict[str, str]) -> None:
    pred = det.score_one(TINY_IMAGES / row["image"])
    assert pred.ok, pred.error
    assert abs(pred.logit - float(row["logit"])) < TOL
    assert abs(pred.score - float(row["score"])) < TOL
    assert f"{pred.input_height}x{pred.input_width}" == row["model_input_hw"]
    assert pred.num_patches == int(row["num_patches"])
    assert len(pred.attention_mean) == pred.num_patches
    assert abs(sum(pred.attention_mean) - 1.0) < 1e-5


def test_intermediate_tensors_match_debug_dump(det: Detector) -> None:
    ref = np.load(TINY_DIR / "debug" / "03_debug_tensors.npz")
    summary = json.loads((TINY_DIR / "debug" / "03_debug_summary.json").read_text())
    x, _ = det.prepare(TINY_IMAGES / "03_rgb_1024x768.png")
    assert list(x.shape) == list(ref["model_input_shape"][1:])
    layout = det.model.layout(x.shape[1], x.shape[2])
    assert (layout.rows, layout.cols, layout.five_crop) == (summary["grid_rows"], summary["grid_cols"], False)
    from spai.model import extract_crops

    crops = extract_crops(x, layout)
    np.testing.assert_allclose(crops.numpy(), ref["patches"], atol=1e-7)
    with torch.inference_mode():
        out = det.model.forward_image(x)
    np.testing.assert_allclose(out.features.numpy(), ref["patch_features"], atol=TOL)
    np.testing.assert_allclose(out.attention.numpy(), ref["attention"][0, :, 0], atol=TOL)
    np.testing.assert_allclose(out.pooled.numpy(), ref["pooled"][0], atol=TOL)
    assert abs(float(out.logit) - float(ref["logit"][0])) < TOL


def test_five_crop_fallback_matches_debug_summary(det: Detector) -> None:
    summary = json.loads((TINY_DIR / "debug" / "02_debug_summary.json").read_text())
    pred = det.score_one(TINY_IMAGES / "02_rgb_500x300.png")
    assert pred.five_crop is summary["five_crop_fallback"] is True
    assert (pred.grid_rows, pred.grid_cols) == (summary["grid_rows"], summary["grid_cols"])
    np.testing.assert_allclose(pred.attention, summary["attention_per_head"], atol=TOL)
    # five crops in image coordinates: corners then centre (offsets round half to even)
    assert pred.boxes == [
        (0, 0, 224, 224),
        (276, 0, 500, 224),
        (0, 76, 224, 300),
        (276, 76, 500, 300),
        (138, 38, 362, 262),
    ]


def test_frequency_mask_geometry() -> None:
    m = frequency_mask(224, 16)
    assert m.dtype == torch.int64 and int(m.sum()) == 856
    assert torch.equal(m, m.flip(0)) and torch.equal(m, m.flip(1))  # symmetric about the 2x2 centre


def test_full_size_model_has_official_keys_and_shapes() -> None:
    model = build_model(load_config(Path(__file__).parents[1] / "configs" / "spai.yaml"))
    own = {k: list(v.shape) for k, v in model.state_dict().items()}
    rows = (TINY_DIR.parent / "spai-state-dict.tsv").read_text().strip().splitlines()[1:]
    ref = {k: json.loads(s) for k, s, _ in (r.split("\t") for r in rows)}
    assert own == ref
    assert model.state_dict()["mfvit.frequencies_mask"].dtype == torch.int64
    # the official key set loads strictly (zeros of the right shapes stand for the weights)
    state = {k: torch.zeros(v) for k, v in ref.items()}
    assert load_state(model, state) == []


def test_wrong_shape_names_key_and_both_shapes(tmp_path: Path) -> None:
    state = extract_state_dict(read_checkpoint(TINY_WEIGHTS))
    state["to_kv.weight"] = torch.zeros(10, 82)
    bad = tmp_path / "bad.pth"
    torch.save({"model": state}, bad)
    with pytest.raises(CheckpointError, match=r"to_kv\.weight: checkpoint \(10, 82\) vs model \(256, 82\)"):
        Detector.load(bad, TINY_CFG, "cpu")


def test_missing_key_is_an_error_and_extra_key_a_warning(tmp_path: Path) -> None:
    state = extract_state_dict(read_checkpoint(TINY_WEIGHTS))
    model = build_model(load_config(TINY_CFG))
    missing = {k: v for k, v in state.items() if k != "norm.bias"}
    with pytest.raises(CheckpointError, match=r"missing key\(s\): norm\.bias"):
        load_state(model, missing)
    extra = dict(state, **{"module.unused_head.weight": torch.zeros(3)})
    with pytest.warns(UserWarning, match="module.unused_head.weight"):
        assert load_state(model, extra) == ["module.unused_head.weight"]


@pytest.mark.parametrize("container", ["official", "bare", "training"])
def test_checkpoint_containers_give_the_same_scores(tmp_path: Path, det: Detector, container: str) -> None:
    state = extract_state_dict(read_checkpoint(TINY_WEIGHTS))
    obj = {
        "official": {"model": state, "epoch": 3},
        "bare": state,
        "training": {"model": state, "optimizer": None, "epoch": 1, "config": load_config(TINY_CFG).to_dict()},
    }[container]
    path = tmp_path / "m.pth"
    torch.save(obj, path)
    other = Detector.load(path, TINY_CFG if container != "training" else None, "cpu")
    img = TINY_IMAGES / "06_rgba_460x470.png"
    assert other.score_one(img).logit == pytest.approx(det.score_one(img).logit, abs=1e-7)


def test_opt_override_changes_config() -> None:
    cfg = load_config(TINY_CFG, opts=[("MODEL.FRE.MASKING_RADIUS", "24"), ("MODEL.VIT.INTERMEDIATE_LAYERS", "[1, 3]")])
    assert cfg.model.fre.masking_radius == 24
    assert cfg.model.vit.intermediate_layers == (1, 3)
    assert cfg.to_dict()["MODEL"]["FRE"]["MASKING_RADIUS"] == 24


# ----------------------------------------------------------------------------- input modes


def _modes(tmp: Path) -> dict[str, Path]:
    base = Image.open(TINY_IMAGES / "07_photo_640x427.jpg").convert("RGB").resize((300, 240))
    out = {}
    for mode in ["L", "LA", "P", "RGBA", "CMYK"]:
        p = tmp / f"m_{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
        base.convert(mode).save(p)
        out[mode] = p
    arr16 = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    p16 = tmp / "m_I16.png"
    Image.fromarray(arr16).save(p16)  # mode I;16
    out["I;16"] = p16
    frames = [base.convert("P"), base.rotate(90).convert("P")]
    frames[0].save(tmp / "anim.gif", save_all=True, append_images=frames[1:])
    out["gif"] = tmp / "anim.gif"
    base.save(tmp / "anim.webp", save_all=True, append_images=[base.rotate(90)])
    out["webp"] = tmp / "anim.webp"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW
    base.save(tmp / "exif.jpg", exif=exif)
    out["exif"] = tmp / "exif.jpg"
    return out


def test_all_modes_are_scored_like_pil_convert_rgb(tmp_path: Path, det: Detector) -> None:
    for name, path in _modes(tmp_path).items():
        pred = det.score_one(path)
        assert pred.ok, f"{name}: {pred.error}"
        with Image.open(path) as im:
            expected = det.score_one(im.convert("RGB"))  # first frame, no EXIF rotation
        assert pred.logit == pytest.approx(expected.logit, abs=1e-7), name
        assert (pred.width, pred.height) == (300, 240), name


def test_pixel_cap_refuses_before_decoding(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000)).save(big)
    with pytest.raises(ImageLoadError, match="6,000,000 pixels exceeds the cap of 1,000,000"):
        open_rgb(big, max_pixels=1_000_000)


def test_csv_paths_cannot_escape_root(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    with pytest.raises(ImageLoadError, match="escapes"):
        resolve_under_root(tmp_path / "root", "../secret.png")
    with pytest.raises(ImageLoadError, match="escapes"):
        resolve_under_root(tmp_path / "root", "/etc/passwd")
    assert resolve_under_root(tmp_path / "root", "a/b.png") == (tmp_path / "root" / "a" / "b.png").resolve()


def _broken_folder(tmp: Path) -> Path:
    d = tmp / "mixed"
    d.mkdir()
    good = ["01_rgb_224x224.png", "04_rgb_97x130.png", "07_photo_640x427.jpg"]
    for g in good:
        (d / g).write_bytes((TINY_IMAGES / g).read_bytes())
    (d / "zero.png").write_bytes(b"")
    (d / "text.jpg").write_text("this is not an image")
    data = (TINY_IMAGES / "07_photo_640x427.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (9, 99, 199)).save(buf, "TIFF")
    (d / "truncated.tif").write_bytes(buf.getvalue()[:2000])  # like RAISE-1k r0bf7f938t.tif
    (d / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    Image.new("RGB", (2000, 1500)).save(d / "huge.png")
    return d


def test_infer_cli_folder_with_broken_images(tmp_path: Path) -> None:
    folder = _broken_folder(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        cli,
        [
            "infer",
            "--input",
            str(folder),
            "--model",
            str(TINY_WEIGHTS),
            "--cfg",
            str(TINY_CFG),
            "--output",
            str(out),
            "--max-pixels",
            "2000000",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "3 scored, 6 failed" in res.output
    with open(out / "mixed.csv", newline="") as fh:
        rows = {r["image"]: r for r in csv.DictReader(fh)}
    assert list(next(iter(rows.values())).keys())[:5] == ["image", "class", "split", "spai", "error"]
    for good in ["01_rgb_224x224.png", "04_rgb_97x130.png", "07_photo_640x427.jpg"]:
        assert rows[good]["error"] == "" and 0 <= float(rows[good]["spai"]) <= 1
    assert "empty file" in rows["zero.png"]["error"]
    assert "not an image" in rows["text.jpg"]["error"]
    assert "truncated" in rows["truncated.jpg"]["error"]
    assert rows["truncated.tif"]["error"] and rows["truncated.tif"]["spai"] == ""
    assert rows["garbage.png"]["error"]
    assert "exceeds the cap" in rows["huge.png"]["error"]


def test_infer_cli_csv_keeps_columns_split_and_mask(tmp_path: Path) -> None:
    csv_path = tmp_path / "list.csv"
    csv_path.write_text(
        "image,class,split,note\n01_rgb_224x224.png,0,test,a\n03_rgb_1024x768.png,1,train,b\n../escape.png,1,test,c\n"
    )
    out = tmp_path / "o"
    res = CliRunner().invoke(
        cli,
        [
            "infer",
            "-i",
            str(csv_path),
            "--input-csv-root-dir",
            str(TINY_IMAGES),
            "-m",
            str(TINY_WEIGHTS),
            "--cfg",
            str(TINY_CFG),
            "-o",
            str(out),
            "--tag",
            "myscore",
            "--opt",
            "TEST.EXPORT_IMAGE_PATCHES",
            "True",
        ],
    )
    assert res.exit_code == 0, res.output
    with open(out / "list.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["note"] for r in rows] == ["a", "b", "c"]
    assert float(rows[0]["myscore"]) == pytest.approx(0.47882696986198425, abs=TOL)
    assert rows[1]["myscore"] == ""  # not in the split
    assert "escapes" in rows[2]["error"]
    mask = Path(rows[0]["myscore_mask"])
    assert mask.is_file() and (mask.parent / "attn_overlay.png").is_file()
    assert not np.isnan(np.asarray(Image.open(mask), dtype=float)).any()


def test_test_cli_reports_metrics(tmp_path: Path) -> None:
    csv_path = tmp_path / "t.csv"
    names = [r["image"] for r in _expected()]
    lines = ["image,class,split"] + [f"{n},{i % 2},test" for i, n in enumerate(names)]
    csv_path.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(
        cli,
        [
            "test",
            "--cfg",
            str(TINY_CFG),
            "--model",
            str(TINY_WEIGHTS),
            "--test-csv",
            str(csv_path),
            "--test-csv-root-dir",
            str(TINY_IMAGES),
            "--output",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "o" / "spai_test_metrics.json").read_text())[0]
    from sklearn.metrics import roc_auc_score

    exp = {r["image"]: float(r["score"]) for r in _expected()}
    y = [i % 2 for i in range(len(names))]
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, [exp[n] for n in names]), abs=1e-6)
    assert "AUC=" in res.output and "ACC=" in res.output and "AP=" in res.output


def test_onnx_export_and_backend_agree(tmp_path: Path, det: Detector) -> None:
    res = CliRunner().invoke(
        cli, ["export-onnx", "--cfg", str(TINY_CFG), "--model", str(TINY_WEIGHTS), "--output", str(tmp_path / "onnx")]
    )
    assert res.exit_code == 0, res.output
    from spai.onnx_backend import OnnxModel

    onnx = OnnxModel(tmp_path / "onnx", det.model)
    for name in ["01_rgb_224x224.png", "03_rgb_1024x768.png", "08_synth_449x450.png"]:
        x, _ = det.prepare(TINY_IMAGES / name)
        logit, attn = onnx.forward_image(x)
        ref = det.score_one(TINY_IMAGES / name)
        assert abs(logit - ref.logit) < 1e-4
        np.testing.assert_allclose(attn, ref.attention, atol=1e-4)
    out = tmp_path / "scored"
    res = CliRunner().invoke(
        cli,
        [
            "infer",
            "-i",
            str(TINY_IMAGES),
            "-m",
            str(TINY_WEIGHTS),
            "--cfg",
            str(TINY_CFG),
            "-o",
            str(out),
            "--backend",
            "onnx",
        ],
    )
    assert res.exit_code == 0, res.output
    with open(out / "images.csv", newline="") as fh:
        got = {r["image"]: float(r["spai"]) for r in csv.DictReader(fh)}
    for r in _expected():
        assert abs(got[r["image"]] - float(r["score"])) < 1e-4


def test_chunk_size_does_not_change_results(det: Detector) -> None:
    x, _ = det.prepare(TINY_IMAGES / "03_rgb_1024x768.png")
    with torch.inference_mode():
        a = det.model.forward_image(x, chunk=1).logit
        b = det.model.forward_image(x, chunk=12).logit
    assert abs(float(a) - float(b)) < 1e-6


def test_progress_callback_and_errors_in_batch(det: Detector) -> None:
    seen = []
    preds = det.score(
        [TINY_IMAGES / "01_rgb_224x224.png", b"", b"not an image"], on_progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert preds[0].ok and not preds[1].ok and not preds[2].ok
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert preds[1].error == "empty input (0 bytes)"
