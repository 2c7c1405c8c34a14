"""One module per CLI command.

Each module defines NAME, HELP, `add_arguments(parser)` and `run(args) -> int`.
The CLI finds them with pkgutil, so a command exists exactly when its module does.
Command modules import heavy clients (kubernetes, docker, sqlalchemy) inside
`run`, never at module level: `graysteps --version` must stay fast.
"""
