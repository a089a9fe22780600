from mutoscope.cli.main import app

app(prog_name="mutoscope")
