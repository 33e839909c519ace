"""reglab-report and the notebook API: the papers' figures beside the published numbers.

Layout: :mod:`.experiments` (one module per experiment, the registry; a sweep without one
gets :mod:`.generic`), shared helpers :mod:`.stats` (mean ± s.d. over seeds, measured vs
published), :mod:`.plotting`, :mod:`.history` (learning curves) and :mod:`.runinfo` (what a
run was, from its recorded choices and config), reading runs :mod:`.sweeps` and
:mod:`.results` (flat frames: ``reglab.results``, ``reglab.history``), the page
:mod:`.sections`, :mod:`.tables`, :mod:`.html`, :mod:`.cli` (``reglab-report``),
:mod:`.runs` (``reglab-runs``) and :mod:`.illustrations`. The published numbers
(:mod:`reglab.published`), the PNG resolution and the model illustrations' registry
(:mod:`reglab.figures`) live below both this package and :mod:`reglab.illustrate`.
"""
