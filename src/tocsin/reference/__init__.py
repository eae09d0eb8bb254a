"""The reference documents generated from the code: configuration keys and metrics.

`config_reference` walks the validation models, `metrics_reference` reads a live
`/metrics`; tests fail when the committed documents differ from what these generate.
"""
