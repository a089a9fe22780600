"""Test-only model builds: random-weight pipelines small enough for a 2-core CPU, built without the hub.

PUT HERE: builders the `builtin:` test models of models.toml call (through their family's `build_tiny`).
DO NOT PUT HERE: anything a real model's load or call path uses; a family module imports this package
only inside `build_tiny`.
"""
