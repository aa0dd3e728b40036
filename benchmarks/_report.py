"""Rows of results, and the markdown tables printed for the README."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ._timing import Timing

__all__ = ["Check", "Ratio", "Row", "Skip", "format_seconds", "markdown"]


@dataclasses.dataclass
class Ratio:
    """``value`` = time(``numerator`` cases) / time(``denominator`` cases), median over rounds; ``target`` is
    ``("<=", x)`` or ``(">=", x)`` or ``None`` (information only)."""

    name: str
    value: float
    numerator: list[str]
    denominator: list[str]
    target: tuple[str, float] | None = None

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        op, bound = self.target
        return self.value <= bound if op == "<=" else self.value >= bound

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "numerator": self.numerator, "denominator": self.denominator,
                "target": None if self.target is None else f"{self.target[0]} {self.target[1]:g}", "met": self.met}


@dataclasses.dataclass
class Row:
    """One timed comparison: an operation on a backend through a front end at a size."""

    group: str
    op: str
    backend: str
    front_end: str
    shape: tuple[int, ...] | None
    times: dict[str, Timing]
    ratios: list[Ratio]
    dtype: str | None = "float32"
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "op": self.op, "backend": self.backend, "front_end": self.front_end,
            "shape": list(self.shape) if self.shape is not None else None, "dtype": self.dtype,
            "times": {k: v.as_dict() for k, v in self.times.items()},
            "ratios": {r.name: r.as_dict() for r in self.ratios}, "note": self.note,
        }


@dataclasses.dataclass
class Check:
    """A pass/fail measurement (GPU: host syncs, transfer guard, CUDA-graph replay, kernel counts)."""

    group: str
    op: str
    backend: str
    front_end: str
    passed: bool
    detail: str = ""
    value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Skip:
    """Something that was not measured, and why."""

    group: str
    op: str
    backend: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def format_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


_BASELINE_LABEL = {"diffusers": "diffusers", "front_end": "front end", "stepped": "stepped from Python",
                   "draws": "its draws alone (compiled)"}


def _baseline(row: Row, ratio: Ratio) -> str:
    names = ratio.denominator
    total = sum(row.times[n].median for n in names)
    if names == ["draw", "copy"]:
        return (f"floor {format_seconds(total)} (draw {format_seconds(row.times['draw'].median)} + copy "
                f"{format_seconds(row.times['copy'].median)})")
    label = " + ".join(_BASELINE_LABEL.get(n, n) for n in names)
    return f"{label} {format_seconds(total)}"


def _shape(shape: tuple[int, ...] | None) -> str:
    return "—" if shape is None else "(" + ", ".join(str(s) for s in shape) + ")"


def _mark(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "**no**")


def markdown(rows: list[Row], checks: list[Check], skips: list[Skip], info: Mapping[str, Any], *,
             brief: bool = False) -> str:
    """The tables, and the machine they ran on, as markdown (``brief``: only the ratios that have a target)."""
    libs = ", ".join(f"{k} {v}" for k, v in info.get("libraries", {}).items())
    gpu = info.get("gpu") or "none"
    header = (
        f"Machine: {info.get('cpu')}, {info.get('usable_cores')} usable cores of {info.get('cores')}, "
        f"load average {info.get('load_average')}, GPU: {gpu}; torch threads {info.get('torch_threads')}; "
        f"Python {info.get('python')}; {libs}; commit {info.get('commit')}."
    )
    lines = [
        header,
        "",
        "| group | operation | backend · front end | size | ours | against | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        for ratio in row.ratios:
            if brief and ratio.target is None:
                continue
            ours = "floor" if ratio.numerator == ["draw", "copy"] else " + ".join(ratio.numerator)
            ours_time = format_seconds(sum(row.times[n].median for n in ratio.numerator))
            ours_cell = ours_time if ratio.numerator == ["ours"] else f"{ours} {ours_time}"
            target = "" if ratio.target is None else f"{ratio.target[0]} {ratio.target[1]:g}"
            lines.append(
                f"| {row.group} | {row.op} | {row.backend} · {row.front_end} | {_shape(row.shape)} | {ours_cell} | "
                f"{_baseline(row, ratio)} | {ratio.name} = {ratio.value:.3g} | {target} | {_mark(ratio.met)} |"
            )
    note = ("Times are medians of interleaved samples; a ratio is the median of the ratios within each round, so "
            "on a loaded machine it can differ from the quotient of the two medians.")
    lines += ["", note]
    if checks:
        lines += ["", "| group | check | backend · front end | result | detail |", "| --- | --- | --- | --- | --- |"]
        for c in checks:
            value = "" if c.value is None else f" ({c.value:g})"
            lines.append(f"| {c.group} | {c.op} | {c.backend} · {c.front_end} | "
                         f"{'pass' if c.passed else '**fail**'}{value} | {c.detail} |")
    if skips:
        lines += ["", "Not measured here:", ""]
        lines += [f"- {s.group} · {s.op} · {s.backend}: {s.reason}" for s in skips]
    return "\n".join(lines)
