"""Tables of results, as markdown, and the results files under artifacts/quality/."""

import json
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

from .gateway import summarise

CLASSES = ("single", "two-column", "table", "man", "scan", "degraded", "tilted", "tilted-two-column", "held-out")


def save(out: Path, name: str, payload) -> Path:
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1))
    return path


def by_model_and_class(rows: List[dict]) -> str:
    groups: Dict[str, Dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[r["model"]][r["class"]].append(r)
    classes = [c for c in CLASSES if any(c in g for g in groups.values())]
    head = "| model | " + " | ".join(classes) + " | all but held-out | pages/s | CPU s/page |"
    lines = [head, "|" + "---|" * (len(classes) + 4)]
    for model, per in groups.items():
        cells = []
        for c in classes:
            s = summarise(per.get(c, []))
            cells.append("%.3f / %.2f" % (s["cer"], s["word_f1"]) if per.get(c) else "")
        # Held-out pages have a column of their own: the totals stay those of the tuned pages.
        total = summarise([r for c, rs in per.items() if c != "held-out" for r in rs])
        lines.append("| %s | %s | %.3f / %.2f | %.3f | %.2f |" % (
            model, " | ".join(cells), total["cer"], total["word_f1"], total["pages_per_s"], total["cpu_s_per_page"]))
    return "\n".join(lines)


def per_page(rows: List[dict]) -> str:
    models = list(dict.fromkeys(r["model"] for r in rows))
    pages = list(dict.fromkeys(r["page"] for r in rows))
    cell = {(r["model"], r["page"]): r for r in rows}
    lines = ["| page | class | " + " | ".join(models) + " |", "|" + "---|" * (len(models) + 2)]
    for p in pages:
        cls = next(r["class"] for r in rows if r["page"] == p)
        lines.append("| %s | %s | %s |" % (p, cls, " | ".join(
            "%.3f (%.1fs)" % (cell[m, p]["cer"], cell[m, p]["wall_s"]) if (m, p) in cell else "" for m in models)))
    return "\n".join(lines)


def rescore(path: Path, pages: List[dict]) -> None:
    """Score the texts of a saved run again against the corpus's truth, and print its tables."""
    from .gateway import score
    from .sweep import table

    truth = {p["name"]: p["truth_text"] for p in pages}
    rows = [dict(r, **score(truth[r["page"]], r["text"])) for r in json.loads(path.read_text())
            if r["page"] in truth]
    path.write_text(json.dumps(rows, indent=1))
    print(f"## {path.name}\n")
    if rows and "variant" in rows[0]:
        print(table(rows))
    else:
        print(by_model_and_class(rows) + "\n\n" + per_page(rows))
    print()
