from .._serve import cli
from .app import create_app


def main() -> None:
    cli("simulators.netsuite", create_app, 8302, ".d2r/sim/netsuite-{instance}.sqlite")


if __name__ == "__main__":
    main()
