"""Sub-commands of the ``qagate`` command (one module each: add_arguments + run)."""
