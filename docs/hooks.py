"""MkDocs hooks: the performance page's tables are generated from the benchmark JSON at build time, and pages
that other work adds (``distributed.md``) join the navigation when they exist.

A page asks for a generated block with an HTML comment on a line of its own::

    <!-- generated: benchmark-targets -->

The blocks (see :data:`BLOCKS`) read ``docs/data/benchmarks.json``, written by
``python -m benchmarks --json docs/data/benchmarks.json``. A missing file or an unknown block name fails the
build, so a table can never silently go stale or vanish.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
BENCHMARKS_JSON = DOCS / "data" / "benchmarks.json"
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
# Pages that other branches add; each joins the nav (after "Getting started") when its file exists.
OPTIONAL_PAGES = {"distributed.md": "Distributed (Dask)"}

_BASELINE = {"diffusers": "diffusers", "front_end": "front end", "stepped": "stepped from Python",
             "draws": "its draws alone (compiled)", "update": "the update alone", "copy": "copy"}


def format_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def _shape(shape: list[int] | None) -> str:
    return "—" if shape is None else "(" + ", ".join(str(s) for s in shape) + ")"


def _total(row: dict[str, Any], names: list[str]) -> float:
    return sum(row["times"][n]["median_s"] for n in names)


def _against(row: dict[str, Any], names: list[str]) -> str:
    total = format_seconds(_total(row, names))
    if names == ["draw", "copy"]:
        return (f"floor {total} (draw {format_seconds(row['times']['draw']['median_s'])} + copy "
                f"{format_seconds(row['times']['copy']['median_s'])})")
    return " + ".join(_BASELINE.get(n, n) for n in names) + f" {total}"


def _ours(row: dict[str, Any], names: list[str]) -> str:
    total = format_seconds(_total(row, names))
    if names == ["ours"]:
        return total
    if names == ["draw", "copy"]:
        return f"floor {total}"
    return " + ".join(names) + f" {total}"


def _ratio_rows(payload: dict[str, Any], *, with_target: bool) -> list[str]:
    lines = []
    for row in payload["rows"]:
        for name, ratio in row["ratios"].items():
            if (ratio["target"] is not None) != with_target:
                continue
            met = "" if ratio["met"] is None else ("yes" if ratio["met"] else "**no**")
            cells = [row["op"], f"{row['backend']} · {row['front_end']}", _shape(row["shape"]),
                     _ours(row, ratio["numerator"]), _against(row, ratio["denominator"]),
                     f"{name} = {ratio['value']:.3g}"]
            if with_target:
                cells += [ratio["target"], met]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets_table(payload: dict[str, Any]) -> str:
    """Every ratio that has a target: what was timed, against what, the ratio, the target, whether met."""
    head = ["| operation | backend · front end | size | ours | against | ratio | target | met |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    return "\n".join(head + _ratio_rows(payload, with_target=True))


def other_table(payload: dict[str, Any]) -> str:
    """The ratios measured for information (no target)."""
    rows = _ratio_rows(payload, with_target=False)
    if not rows:
        return "_No measurements without a target in this run._"
    head = ["| operation | backend · front end | size | ours | against | ratio |",
            "| --- | --- | --- | --- | --- | --- |"]
    return "\n".join(head + rows)


def machine_line(payload: dict[str, Any]) -> str:
    """The machine, the libraries and the run's settings, in one paragraph."""
    info, settings = payload["machine"], payload["settings"]
    libs = ", ".join(f"{k} {v}" for k, v in info.get("libraries", {}).items())
    load = info.get("load_average")
    # The run itself keeps about the usable cores busy; well above that, other work was competing.
    loaded = bool(load) and load[0] > 1.5 * (info.get("usable_cores") or 1)
    warning = ("\n\n!!! warning \"A loaded machine\"\n    Other work competed for the cores during this run (a "
               "one-minute load average above 1.5 times the cores): the times are inflated and the ratios noisier "
               "than on a quiet machine. Rerun on a quiet machine before quoting them.") if loaded else ""
    return (
        f"Measured on {info.get('cpu')}, {info.get('usable_cores')} usable cores of {info.get('cores')}"
        f" (load average {', '.join(str(x) for x in load) if load else 'unknown'} at the end of the run), "
        f"GPU: {info.get('gpu') or 'none'}; torch threads {info.get('torch_threads')}; Python {info.get('python')}; "
        f"{libs}; commit `{info.get('commit')}`. {settings['repeats']} interleaved rounds per comparison"
        f"{' (quick mode: smoke sizes, not for quoting)' if settings.get('quick') else ''}; the run took "
        f"{payload['elapsed_s'] / 60:.1f} min." + warning
    )


def checks_table(payload: dict[str, Any]) -> str:
    """Pass/fail measurements (GPU synchronisation, transfer guard, CUDA graphs, kernel counts)."""
    checks = payload.get("checks") or []
    if not checks:
        return "_No pass/fail checks ran in this run._"
    lines = ["| check | backend · front end | result | detail |", "| --- | --- | --- | --- |"]
    for c in checks:
        value = "" if c.get("value") is None else f" ({c['value']:g})"
        lines.append(f"| {c['group']} · {c['op']} | {c['backend']} · {c['front_end']} | "
                     f"{'pass' if c['passed'] else '**fail**'}{value} | {c['detail']} |")
    return "\n".join(lines)


def skipped_list(payload: dict[str, Any]) -> str:
    """What this run could not measure, and why."""
    skipped = payload.get("skipped") or []
    if not skipped:
        return "_Nothing was skipped._"
    return "\n".join(f"- {s['group']} · {s['op']} · {s['backend']}: {s['reason']}" for s in skipped)


BLOCKS: dict[str, Callable[[dict[str, Any]], str]] = {
    "benchmark-machine": machine_line,
    "benchmark-targets": targets_table,
    "benchmark-other": other_table,
    "benchmark-checks": checks_table,
    "benchmark-skipped": skipped_list,
}


def load_benchmarks(path: Path = BENCHMARKS_JSON) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m benchmarks --json {path}`")
    payload: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return payload


def render(markdown: str, payload: dict[str, Any] | None = None) -> str:
    """``markdown`` with every generated block filled in."""
    if not MARKER.search(markdown):
        return markdown
    payload = load_benchmarks() if payload is None else payload

    def fill(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r}; known: {', '.join(BLOCKS)}")
        return BLOCKS[name](payload)

    return MARKER.sub(fill, markdown)


# ------------------------------------------------------------------------------------------------ MkDocs hooks
def on_config(config: Any) -> Any:
    nav = config.get("nav") or []
    listed = json.dumps(nav)
    for page, title in OPTIONAL_PAGES.items():
        if (Path(config["docs_dir"]) / page).is_file() and f'"{page}"' not in listed:
            where = next((k + 1 for k, item in enumerate(nav) if isinstance(item, dict)
                          and "Getting started" in item), len(nav))
            nav.insert(where, {title: page})
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return render(markdown)
