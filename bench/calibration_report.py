"""What bench/calibration.py prints and draws: its Markdown tables and its plot."""

from __future__ import annotations

from typing import Any

from common import DOCS, pyplot

HEADER = (
    "| thresholds | decisions | hold_at | reject_at | precision | recall | F1 | F1 wiki "
    "| F1 tweets | reject precision |"
)


def table(result: dict[str, Any], model: str) -> str:
    """The learning curve (against ``model``'s own defaults) and the timing as Markdown tables."""
    from service.moderation.policy import DEFAULT_HOLD_AT, DEFAULT_REJECT_AT, default_thresholds

    def cell(figures: dict[str, Any], subset: str, name: str) -> str:
        value = figures.get(subset, {}).get(name)
        return "-" if value is None else f"{value:.3f}"

    own_hold, own_reject = default_thresholds(model)
    fixed = {
        "profanity-check defaults": (own_hold["toxicity"], own_reject["toxicity"]),
        "Detoxify-tuned defaults": (DEFAULT_HOLD_AT["toxicity"], DEFAULT_REJECT_AT["toxicity"]),
    }
    learning = result["learning"] or {"baselines": {}, "curve": []}
    rows = [(name, "-", *fixed[name], figures) for name, figures in learning["baselines"].items()]
    rows += [
        ("calibrated", p["decisions"], p["hold_at"], p["reject_at"], p["test"])
        for p in learning["curve"]
    ]
    lines = [HEADER, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, decisions, hold, reject, figures in rows:
        cells = [
            name,
            str(decisions),
            f"{hold:.4g}",
            "off" if reject is None else f"{reject:.4g}",
            cell(figures, "all", "precision"),
            cell(figures, "all", "recall"),
            cell(figures, "all", "f1"),
            cell(figures, "wiki", "f1"),
            cell(figures, "tweets", "f1"),
            cell(figures, "all", "reject_precision"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| decisions | read (newest) | GET /v1/site/calibration | peak memory added | seeding |",
        "|---:|---:|---:|---:|---:|",
    ]
    for t in result["timing"]:
        seconds, rss, seed_s = t["seconds"], t["peak_rss_mib"], t["seed_s"]
        read = f"{t['read']:,}" if "read" in t else "all"
        lines.append(f"| {t['decisions']:,} | {read} | {seconds:.3f} s | {rss} MiB | {seed_s} s |")
    return "\n".join(lines)


def plot(result: dict[str, Any]) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    curve = result["learning"]["curve"]
    x = [p["decisions"] for p in curve]
    for metric, style in (("f1", "o-"), ("precision", "s--"), ("recall", "^--")):
        left.plot(x, [p["test"]["all"][metric] for p in curve], style, label=f"calibrated {metric}")
    colours = {"profanity-check defaults": "tab:green", "Detoxify-tuned defaults": "tab:red"}
    for name, figures in result["learning"]["baselines"].items():
        left.axhline(figures["all"]["f1"], color=colours[name], linestyle=":", label=f"F1, {name}")
    left.set_xscale("log")
    left.set_xticks(x, [f"{v:,}" for v in x])
    left.minorticks_off()
    left.set_xlabel("moderator decisions")
    left.set_ylabel('"not approved" vs human labels (held-out set)')
    left.set_title("Learning curve (profanity-check; optimistic: its training data)")
    left.legend(fontsize=8)
    sizes = [t["decisions"] for t in result["timing"]]
    right.loglog(sizes, [t["seconds"] for t in result["timing"]], "o-")
    right.set_xlabel("decisions (= comments) of the site")
    right.set_ylabel("GET /v1/site/calibration, seconds")
    right.set_title(f"Calibration time ({result['database']})")
    fig.tight_layout()
    DOCS.mkdir(exist_ok=True)
    fig.savefig(DOCS / "bench-calibration.png", dpi=110)
