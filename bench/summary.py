"""The side-by-side benchmark's figures: medians over rounds per scenario and side, the ratios
between sides, and the markdown table of them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

from bench.sides import Scenario

Medians = dict[str, dict[str, dict[str, Any]]]  # scenario -> side -> figure -> value
FIGURES = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_req", "cpu_ms_per_req_compare_py")


def summarize(rows: list[dict[str, Any]], scenarios: Iterable[Scenario]) -> Medians:
    medians: Medians = {}
    for scenario in scenarios:
        for side in scenario.sides:
            sel = [r for r in rows if r["scenario"] == scenario.key and r["side"] == side]
            if not sel:
                continue
            ok = [r for r in sel if r["requests"]]
            m: dict[str, Any] = {k: round(statistics.median(r[k] for r in ok), 3) if ok else None for k in FIGURES}
            parts = ok[0]["cpu_ms_per_req_by_part"] if ok else {}
            m["cpu_ms_per_req_by_part"] = {
                part: round(statistics.median(r["cpu_ms_per_req_by_part"][part] for r in ok), 3) for part in parts
            }
            calls = sum(r["upstream_calls"] for r in sel)
            m.update(
                errors=sum(r["errors"] for r in sel),
                rounds=len(sel),
                upstream_calls_per_req=round(calls / max(1, sum(r["requests"] for r in sel)), 3),
            )
            medians.setdefault(scenario.key, {})[side] = m
    return medians


def ratios(medians: Medians) -> dict[str, dict[str, float]]:
    out = {}
    for scenario, sides in medians.items():
        for side, ref in (("ours", "litellm"), ("ours_history", "ours")):
            if side in sides and ref in sides:
                out[f"{scenario}: {side} ÷ {ref}"] = {
                    k: round(sides[side][k] / sides[ref][k], 3)
                    for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_req")
                    if sides[side][k] and sides[ref][k]
                }
    return out


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def figures_table(medians: Medians) -> str:
    lines = [
        "| scenario | side | req/s | p50 ms | p99 ms | CPU ms/req | errors | req/s ÷ LiteLLM |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, sides in medians.items():
        ref = sides.get("litellm", {}).get("rps")
        for side, m in sides.items():
            ratio = f"{m['rps'] / ref:.2f}" if ref and side.startswith("ours") else ""
            lines.append(
                f"| {scenario} | {side} | {fmt(m['rps'])} | {fmt(m['p50_ms'])} | {fmt(m['p99_ms'])} | "
                f"{fmt(m['cpu_ms_per_req'], 2)} | {fmt(m['errors'])} | {ratio} |"
            )
    return "\n".join(lines)
