"""Pages through a real gateway: one ``venvserve serve`` on loopback with a given catalog and
render resolution, each page posted to /v1/ocr, timed by the wall clock and by the CPU
seconds its model's workers spent (tesseract's own processes included, as reaped children),
which a machine shared with other work disturbs far less than the wall clock."""

import json
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

import httpx
import psutil

from bench.run import ROOT, Gateway
from .metrics import cer, errors, normalise, word_counts

DEFAULT_MODELS = ("rapidocr", "rapidocr-v4", "tesseract")


def catalog_entries(ids=DEFAULT_MODELS) -> Dict[str, dict]:
    entries = {e["id"]: e for e in json.loads((ROOT / "models.json").read_text())}
    # A run renders every model's PDF pages at its own --pdf-dpi: a catalog's per-model pdf_dpi
    # (rapidocr-v4's 300) would otherwise stand in for it and mislabel the run.
    return {i: {k: v for k, v in entries[i].items() if k != "pdf_dpi"} for i in ids}


class Served:
    def __init__(self, work: Path, entries: List[dict], pdf_dpi: int, data_dir: Path, name: str = "q"):
        work.mkdir(parents=True, exist_ok=True)
        catalog = work / f"models-{name}.json"
        catalog.write_text(json.dumps(entries, indent=1))
        self.models = [e["id"] for e in entries]
        self.pdf_dpi = pdf_dpi
        self.gateway = Gateway(name, work, catalog, data_dir)
        self.client: Optional[httpx.Client] = None

    def __enter__(self) -> "Served":
        os.environ["VENVSERVE_PDF_DPI"] = str(self.pdf_dpi)
        self.gateway.start()
        self.client = httpx.Client(base_url=self.gateway.url, timeout=900)
        for model in self.models:
            self.client.post(f"/v1/models/{model}/load").raise_for_status()
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.gateway.stop()

    def workers(self, model: str) -> List[dict]:
        return [w for w in self.client.get("/v1/status").json()["workers"] if w["model"] == model]

    def _cpu(self, model: str) -> float:
        total = 0.0
        for w in self.workers(model):
            try:
                t = psutil.Process(w["pid"]).cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return total

    def ocr(self, model: str, page: dict, options: Optional[dict] = None) -> dict:
        data = Path(page["path"]).read_bytes()
        fields = {"model": model}
        if options:
            fields["options"] = json.dumps(options)
        cpu0, t0 = self._cpu(model), time.perf_counter()
        r = self.client.post("/v1/ocr", data=fields, files={"file": (Path(page["path"]).name, data)})
        wall = time.perf_counter() - t0
        cpu = self._cpu(model) - cpu0
        r.raise_for_status()
        body = r.json()
        text = body["text"]
        return {"model": model, "page": page["name"], "class": page["class"], "text": text,
                "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                "inference_ms": body.get("timing_ms", {}).get("inference"),
                **score(page["truth_text"], text)}


def score(truth: str, text: str) -> dict:
    want, got = word_counts(truth), word_counts(text)
    return {"errors": errors(truth, text), "chars": len(normalise(truth)), "cer": round(cer(truth, text), 4),
            "words_hit": sum((want & got).values()), "words_truth": sum(want.values()),
            "words_read": sum(got.values())}


def summarise(rows: List[dict]) -> dict:
    """Micro averages: all errors over all characters, F1 of all words, pages per wall second."""
    chars = sum(r["chars"] for r in rows) or 1
    hit = sum(r["words_hit"] for r in rows)
    read, truth = sum(r["words_read"] for r in rows), sum(r["words_truth"] for r in rows)
    f1 = 2 * hit / (read + truth) if read + truth else 0.0
    wall = sum(r["wall_s"] for r in rows)
    return {"pages": len(rows), "cer": round(sum(r["errors"] for r in rows) / chars, 4), "word_f1": round(f1, 4),
            "pages_per_s": round(len(rows) / wall, 3) if wall else None,
            "cpu_s_per_page": round(sum(r["cpu_s"] for r in rows) / len(rows), 3) if rows else None}
