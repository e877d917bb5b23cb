"""The paper's Table 1: the shuffle experiment (Section 3.1), does a model read the images or the perturbations?

* :mod:`.shuffle`: the shuffled evaluation sets (each image's perturbation and label moved to
  another image), their export and checked reading.
* :mod:`.run`: training on the clean and perturbed sets, evaluating on every set, the table
  beside the paper's numbers (:mod:`cifar10s.paper`).

Nothing is imported here; ``cifar10s.leaderboard`` exports :func:`run_table1` and the shuffle
functions lazily.
"""
