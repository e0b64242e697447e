"""The CT watch: logs read into the store and the alert engine (``certvigil ct watch``).

Unlike the rest of ``certvigil.ct`` this package does I/O: it reads logs over HTTP
(``ct.fetch``), keeps each log's state, the findings and the known names in the store,
and raises alerts through the alert engine. See ``docs/ct.md``.
"""
