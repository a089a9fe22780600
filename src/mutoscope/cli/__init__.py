"""The CLI room: the typer composition root. Nothing imports cli/.

PUT HERE: commands, option parsing, progress bars and tables; `common.py` holds what every command
module shares (consoles, `--data-dir`, settings, sessions, the one-line failure), so feature groups
import it and never `main.py`.
DO NOT PUT HERE: behaviour the API also needs — call the services in accounts/,
jobs/, engine/ instead.
"""
