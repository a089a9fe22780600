"""The CLI room: the typer composition root. Nothing imports cli/.

PUT HERE: commands, option parsing, progress bars and tables.
DO NOT PUT HERE: behaviour the API also needs — call the services in accounts/,
jobs/, engine/ instead.
"""
