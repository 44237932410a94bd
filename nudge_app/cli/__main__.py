"""`python -m nudge_app.cli` runs the `nudge` command line."""

from nudge_app.cli import main

main()
