"""Pure-ML core of the recommendations app: numpy/scipy/pandas/torch only, no Django.

Modules: ``data`` (interaction matrix, strong split), ``metrics``, ``models`` (REGISTRY of
vae/ease/itemknn/pop), ``vae`` (torch, imported lazily), ``ease``, ``similarity`` (blocked
top-k cosine, co-purchase lift), ``artifacts`` (pickle-free model files), ``datasets`` and
``evaluate`` (``python -m recommendations.ml.evaluate``).
"""
