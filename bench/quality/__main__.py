import argparse
import sys
from pathlib import Path

from . import corpus


def main(argv=None) -> int:
    import bench.quality

    ap = argparse.ArgumentParser(prog="python -m bench.quality", description=bench.quality.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("build", "run", "orders", "sweep", "spaces", "table", "fixtures"))
    ap.add_argument("--out", type=Path, default=corpus.DEFAULT_OUT)
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="venvserve data dir (built envs); default: OUT/data")
    ap.add_argument("--models", default="rapidocr,rapidocr-v4,tesseract")
    ap.add_argument("--pdf-dpi", type=int, default=200)
    ap.add_argument("--pages", default="", help="comma-separated page names (default: all)")
    ap.add_argument("--name", default="", help="run: name of the results file under OUT (default: run-dpiDPI)")
    ap.add_argument("--sweep", default="all",
                    help="sweep groups: base,det,batch,threads,combo,tesseract (all: every one but combo)")
    ap.add_argument("results", nargs="*", type=Path, help="table: saved results files to score again")
    args = ap.parse_args(argv)
    args.data_dir = args.data_dir or args.out / "data"
    if args.command == "build":
        print(corpus.build(args.out))
        return 0
    pages = corpus.load(args.out)
    if args.pages:
        wanted = set(args.pages.split(","))
        pages = [p for p in pages if p["name"] in wanted]
    if args.command == "table":
        from .report import rescore
        for path in args.results:
            rescore(path, pages)
    elif args.command == "fixtures":
        from .fixtures import fixtures
        fixtures(pages)
    elif args.command == "run":
        from .run import run
        run(args, pages)
    elif args.command == "orders":
        from .orders import orders
        orders(args, pages)
    elif args.command == "spaces":
        from .spaces import spaces
        spaces(args, pages)
    else:
        from .sweep import sweep
        sweep(args, pages)
    return 0


sys.exit(main())
