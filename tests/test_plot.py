"""The main job's picture is readable: every panel has axis labels and ticks, the 2-D panels share one scale,
the metrics box shows the sampler's figures next to the exact draws', and a caption explains each metric."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("matplotlib")

import matplotlib.pyplot as plt  # noqa: E402

from sdeve import _plot  # noqa: E402
from sdeve.__main__ import main  # noqa: E402


@pytest.fixture(scope="module")
def figure(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The figure ``python -m sdeve`` draws, kept open for inspection."""
    kept: list[Any] = []
    out = tmp_path_factory.mktemp("plot") / "ring.png"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plt, "close", kept.append)
        assert main(["--steps", "40", "--batch", "300", "--out", str(out), "--no-progress"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = kept
    yield fig
    plt.close(fig)


def _texts(fig: Any) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text") and o.get_text()))


def test_every_panel_has_axis_labels_and_ticks(figure: Any) -> None:
    axes = [ax for ax in figure.get_axes() if ax.get_visible()]
    assert len(axes) == 6  # the samples, four snapshots, the paths
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
        assert len(ax.get_xticks()) >= 3 and len(ax.get_yticks()) >= 3, ax.get_title()
        shown = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_visible()]
        assert shown, f"no tick labels on {ax.get_title()!r}"


def test_the_plane_panels_share_one_scale(figure: Any) -> None:
    planes = [ax for ax in figure.get_axes() if ax.get_visible() and ax.get_xlabel() == "x1"]
    assert len(planes) == 5
    assert {ax.get_xlim() for ax in planes} == {(-_plot.LIMIT, _plot.LIMIT)}
    assert {ax.get_ylim() for ax in planes} == {(-_plot.LIMIT, _plot.LIMIT)}
    assert len({tuple(ax.get_xticks()) for ax in planes}) == 1


def test_the_metrics_are_shown_with_the_noise_floor_and_explained(figure: Any) -> None:
    text = _texts(figure)
    assert "sampler" in text and "exact" in text
    for term, _ in _plot.CAPTION:
        assert f"\n{term}" in "\n" + text or text.startswith(term), term
    for metric in ("weight error", "mean error", "std error", "log-lik"):
        assert text.count(metric) >= 2, metric  # in the box and in the caption
