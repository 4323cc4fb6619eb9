"""Example gates that need real weights from the hub: never collected by a plain ``pytest`` run.

Run one by naming it: ``pytest quality_tests/examples/gate_generative.yaml`` (pytest collects a
path given on the command line even when it matches ``collect_ignore_glob``).
"""

collect_ignore_glob = ["gate_*.yaml", "gate_*.yml"]
