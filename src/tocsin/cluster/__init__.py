"""Running as one of several processes: shards that split the targets, replicas that repeat them.

`config.py` holds the `cluster:` section and the hash that assigns a target to a shard;
`view.py` turns a loaded configuration into what one shard and replica runs;
`prometheus.py` writes the scrape and rule configuration for a Prometheus over the fleet.
"""
