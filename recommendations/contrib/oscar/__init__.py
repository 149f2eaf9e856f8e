"""django-oscar support: add ``"recommendations.contrib.oscar"`` to ``INSTALLED_APPS`` and
name :class:`~recommendations.contrib.oscar.adapter.OscarAdapter` in
``RECOMMENDATIONS["ADAPTER"]`` (docs/oscar.md)."""
