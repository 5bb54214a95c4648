"""The evaluation report: files written from hand-built arrays, and the missing-matplotlib error."""

from __future__ import annotations

import importlib
import re
import sys

import numpy as np
import pytest

from seismo.models.errors import ReportError
from seismo.models.eval.metrics import evaluate
from seismo.models.reconstruction import Gallery, extremes, pca_2d

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def labelled_scores(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    y[:2] = [0, 1]
    return y, rng.lognormal(mean=2.0 * y, sigma=1.0)  # spans decades: log x-axis


def test_write_report_files_and_html(tmp_path):
    from seismo.models.eval.report import write_report

    y, s = labelled_scores()
    rng = np.random.default_rng(1)
    images = rng.random((4, 12))
    gallery = Gallery(shape=(3, 4), panels={"normal (0), worst": (images, images, s[:4])})
    evaluation = evaluate(y, s, threshold=3.0, threshold_rule="fixed <3>")
    index = write_report(tmp_path / "out", evaluation, y=y, scores=s,
                         codes=rng.normal(size=(200, 5)), gallery=gallery,
                         details={"model": "m & v"})
    html = index.read_text()
    sources = set(re.findall(r'src="([^"]+)"', html))
    assert sources == {p.name for p in index.parent.glob("*.png")}
    assert len(sources) == 6
    for name in sources:
        assert (index.parent / name).read_bytes()[:8] == PNG_MAGIC
    assert "fixed &lt;3&gt;" in html and "m &amp; v" in html and "weighted avg" in html


def test_write_report_without_codes_or_images(tmp_path):
    from seismo.models.eval.report import write_report

    y, s = labelled_scores(n=30)
    constant = np.ones_like(s)  # degenerate histogram range must still plot
    index = write_report(tmp_path, evaluate(y, constant, threshold=1.0, threshold_rule="t"),
                         y=y, scores=constant)
    assert {p.name for p in tmp_path.glob("*.png")} == {
        "scores_histogram.png", "roc_curve.png", "pr_curve.png"
    }
    assert index.name == "index.html"


def test_missing_matplotlib_is_a_one_line_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.axes", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.delitem(sys.modules, "seismo.models.eval.report", raising=False)
    with pytest.raises(ReportError, match=re.escape("pip install 'seismo[report]'")) as caught:
        importlib.import_module("seismo.models.eval.report")
    assert "\n" not in str(caught.value)


def test_pca_matches_numpy_eigenvectors():
    codes = np.random.default_rng(2).normal(size=(100, 6)) * np.arange(1, 7)
    xy, share = pca_2d(codes)
    centred = codes - codes.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(centred, rowvar=False, bias=True))
    top = vectors[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(xy), np.abs(centred @ top), atol=1e-9)
    assert share == pytest.approx(tuple(values[::-1][:2] / values.sum()))


def test_extremes_only_pick_the_asked_class():
    y, s = labelled_scores()
    best, worst = extremes(s, y, 1, 5)
    assert (y[best] == 1).all() and (y[worst] == 1).all()
    assert np.all(np.diff(s[best]) >= 0) and np.all(np.diff(s[worst]) <= 0)
    assert s[worst][0] == s[y == 1].max() and s[best][0] == s[y == 1].min()
