"""`batchcalls`: the command-line client of the batch calling API.

It talks to the public API through the gateway, exactly as any other client would (the reference shapes of
`/v1/batch-calls`), and adds live progress, readable errors and scriptable `--json` output.
"""

__version__ = "0.1.0"
