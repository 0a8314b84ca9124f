"""`d2r`: the command line (Typer). Sub-commands live one module each."""
