"""The status pages: server-rendered HTML and inline SVG, no JavaScript needed.

One module per page (`overview`, `target`, `alert`, `badges`), the shared frame and helpers
in `html` and `svg`, what the pages say about each target in `model`, and which path is
which page in `pages`. Only `config` is imported by the configuration schema; this package
file imports nothing, so the schema does not pull in the pages (which read the scheduler).
"""
