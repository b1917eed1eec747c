"""Untrusted documents, decoded in supervised decoder processes, never in the gateway.

- ``protocol``: length-prefixed JSON frames over the decoder's stdin/stdout.
- ``child``: the decoder process (the only code that imports Pillow or pypdfium2
  on the gateway's side); it caps its own memory and CPU time.
- ``process``: one decoder as the gateway sees it: spawn, one request at a time
  under a wall-clock timeout, kill.
- ``pool``: a few decoders shared by every request; pages of one or several
  PDFs render in parallel; a dead decoder is that request's error and is replaced.
- ``limits``: the limits, the page-size arithmetic and what a decoder's death means.

Importing this package imports neither Pillow nor pdfium.
"""
