"""The mutation gate (run.py) and its guarantee-level mutants (*.toml)."""
