"""Pure ingest rules: CSV layout, phone normalisation, row verdicts, agents and batch options."""
