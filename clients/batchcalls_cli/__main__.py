def main() -> None:
    raise SystemExit("the batchcalls CLI is not built yet")
