"""Measurement of the node from outside: throughput (node-bench), soak, fault injection."""
