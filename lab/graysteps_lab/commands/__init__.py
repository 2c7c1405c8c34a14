"""Lab commands, added to `graysteps` through the `graysteps.commands` entry-point group."""
