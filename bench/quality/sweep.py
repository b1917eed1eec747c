"""Render dpi, detector size limit, recognition batch and threads, per engine, side by side.

One gateway per render resolution; its catalog holds every variant of every engine as its
own model (same env, other ``options``), and each page goes to every variant in turn, so
the load of a shared machine falls on all of them alike. Speed is judged by CPU seconds
per page (the workers' own and their children's) and, second, by pages per wall second.
The pick per engine: the fastest variant whose CER is within 0.005 of the engine's best.
"""

from collections import defaultdict

from .gateway import Served, catalog_entries, summarise
from .report import save

TOLERANCE = 0.005
DEFAULT_PAGES = ("pdfmark-p3", "ascii-p1", "pdfmark-p3-degraded")

# The settings the sweep starts from: the box engines' catalog options before it
# (2 onnxruntime threads, detector limit 2000), so each variant changes one thing.
BEFORE = {"intra_op_num_threads": 2, "det_limit_side_len": 2000}


def box(**changes) -> dict:
    return dict(BEFORE, **changes)


# (engine, variant name, option overrides); "params" merges into the engine's raw params
VARIANTS = {
    "base": [("rapidocr", "det2000", box()), ("rapidocr-v4", "det2000", box()), ("tesseract", "omp1", {})],
    "det": [("rapidocr", "det1280", box(det_limit_side_len=1280)), ("rapidocr", "det960", box(det_limit_side_len=960)),
            ("rapidocr-v4", "det1280", box(det_limit_side_len=1280))],
    "batch": [("rapidocr", "batch16", box(params={"Rec.rec_batch_num": 16})),
              ("rapidocr-v4", "batch16", box(params={"rec_batch_num": 16}))],
    "threads": [("rapidocr", "threads1", box(intra_op_num_threads=1)),
                ("rapidocr-v4", "threads1", box(intra_op_num_threads=1))],
    "combo": [("rapidocr", "det1280-t1", box(det_limit_side_len=1280, intra_op_num_threads=1)),
              ("rapidocr", "det960-t1", box(det_limit_side_len=960, intra_op_num_threads=1)),
              ("rapidocr-v4", "det1280-t1", box(det_limit_side_len=1280, intra_op_num_threads=1))],
    "tesseract": [("tesseract", "omp2", {"omp_thread_limit": 2})],
}
# render resolutions per variant (only PDF pages differ); the rest run at 200 dpi only
AT_DPIS = {"det2000": (150, 200, 300), "omp1": (150, 200, 300), "det1280-t1": (150, 200),
           "det960-t1": (150, 200)}
DPIS = (150, 200, 300)


def variants(groups, dpi: int):
    return [(engine, name, extra) for group in groups for engine, name, extra in VARIANTS[group]
            if dpi in AT_DPIS.get(name, (200,))]


def entry(base: dict, name: str, extra: dict) -> dict:
    e = dict(base, id=f"{base['id']}.{name}")
    options = dict(base.get("options") or {})
    for key, value in extra.items():
        options[key] = dict(options.get(key) or {}, **value) if isinstance(value, dict) else value
    e["options"] = options
    return e


def sweep(args, pages) -> None:
    groups = [g for g in VARIANTS if g != "combo"] if args.sweep == "all" else args.sweep.split(",")
    if not args.pages:
        pages = [p for p in pages if p["name"] in DEFAULT_PAGES]
    engines = [m for m in args.models.split(",")]
    bases = catalog_entries(engines)
    rows = []
    for dpi in DPIS:
        chosen = [(e, n, x) for e, n, x in variants(groups, dpi) if e in bases]
        if not chosen:
            continue
        entries = [entry(bases[e], n, x) for e, n, x in chosen]
        with Served(args.out / "work", entries, dpi, args.data_dir, name=f"sweep{dpi}") as served:
            for page in pages:
                for e in entries:
                    row = served.ocr(e["id"], page)
                    engine, variant = e["id"].rsplit(".", 1)
                    row.update(engine=engine, variant="%s dpi%d" % (variant, dpi), options=e["options"], dpi=dpi)
                    rows.append(row)
                    print("%-28s %-22s cer %.3f  %.1fs  cpu %.1fs" % (e["id"] + " %d" % dpi, page["name"],
                          row["cer"], row["wall_s"], row["cpu_s"]), flush=True)
    save(args.out, "sweep-" + "-".join(groups), rows)
    print(table(rows))


def table(rows) -> str:
    per = defaultdict(list)
    for r in rows:
        per[r["engine"], r["variant"]].append(r)
    lines = ["| engine | variant | CER | word F1 | CPU s/page | pages/s | pick |", "|---|---|---|---|---|---|---|"]
    by_engine = defaultdict(dict)
    for (engine, variant), rs in per.items():
        by_engine[engine][variant] = summarise(rs)
    for engine, results in by_engine.items():
        best = min(s["cer"] for s in results.values())
        near = {v: s for v, s in results.items() if s["cer"] <= best + TOLERANCE}
        pick = min(near, key=lambda v: near[v]["cpu_s_per_page"])
        for variant, s in results.items():
            lines.append("| %s | %s | %.4f | %.3f | %.2f | %.3f | %s |" % (
                engine, variant, s["cer"], s["word_f1"], s["cpu_s_per_page"], s["pages_per_s"],
                "**pick**" if variant == pick else ("within 0.005" if variant in near else "")))
    return "\n".join(lines)
