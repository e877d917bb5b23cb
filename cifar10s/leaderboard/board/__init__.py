"""Result files and the board: the one result format, its signatures, and the pages made from it.

* :mod:`.result_schema`: the result schema, written once (``ResultRecord`` typed below the top
  level), and the field checks generated from its types.
* :mod:`.result_file`: the signed atomic write, the strict read and the shape check of a result
  file, and what its data source means for comparability; used by the scorer and the board alike.
* :mod:`.signing`: the scoring installation's Ed25519 key; signing and verifying results; the
  project's trusted-keys folder.
* :mod:`.results`: result files read once as untrusted input into ``CheckedResult``s (typed
  record, row, signer, file name beside it), every field the board shows checked.
* :mod:`.render`, :mod:`.overview`, :mod:`.paper_rows`, :mod:`.cells`, :mod:`.chart`,
  :mod:`.board_assets`: the Markdown and static-HTML board, its by-model and defenses overviews,
  the paper's rows, the cells both pages share, its SVG figures, its inline style and script.
* :mod:`.curves`, :mod:`.curve_plot`: the learning curves recomputed from the recorded losses and
  accuracies, drawn as SVG and PNG.

No module here imports torch; nothing is imported by this face.
"""
