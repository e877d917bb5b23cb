"""Result files and the board: the one result format, its signatures, and the pages made from it.

* :mod:`.result_file`: the result format (fields, signed atomic write, strict read, checks),
  used by the scorer and the board alike.
* :mod:`.signing`: the scoring installation's Ed25519 key; signing and verifying results.
* :mod:`.results`: result files read as untrusted input, every field the board shows checked.
* :mod:`.render`, :mod:`.chart`, :mod:`.board_assets`: the Markdown and static-HTML board, its
  SVG figures, its inline style and script.
* :mod:`.curves`, :mod:`.curve_plot`: the learning curves recomputed from the recorded losses and
  accuracies, drawn as SVG and PNG.

No module here imports torch; nothing is imported by this face.
"""
