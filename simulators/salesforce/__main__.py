from .._serve import cli
from .app import create_app


def main() -> None:
    cli("simulators.salesforce", create_app, 8301, ".d2r/sim/salesforce.sqlite")


if __name__ == "__main__":
    main()
