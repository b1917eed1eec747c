"""Every model on every page through one gateway, page by page and model by model in turn
(so the machine's load falls on all models alike), then the table per model and class."""

from .gateway import Served, catalog_entries
from .report import by_model_and_class, per_page, save


def run(args, pages) -> list:
    models = args.models.split(",")
    entries = list(catalog_entries(models).values())
    rows = []
    name = args.name or "run-dpi%d" % args.pdf_dpi  # a run of other models beside the saved one keeps both
    with Served(args.out / "work", entries, args.pdf_dpi, args.data_dir) as served:
        for page in pages:
            for model in models:
                row = served.ocr(model, page)
                rows.append(row)
                save(args.out, name, rows)  # kept as it grows: a long run may be cut short
                print("%-12s %-22s cer %.3f  %.1fs  cpu %.1fs" % (model, page["name"], row["cer"], row["wall_s"],
                                                                  row["cpu_s"]), flush=True)
    save(args.out, name, rows)
    print(by_model_and_class(rows))
    print()
    print(per_page(rows))
    return rows
