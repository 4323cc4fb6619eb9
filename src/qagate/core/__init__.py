"""What every other package stands on: the one error type, safe file reads and atomic writes,
the argument types shared by the CLI, the pytest options and the YAML loaders, the safe YAML
loader and the lock that keeps timed sections apart. Standard library only."""
