"""`python -m axo` runs the same CLI as the `axo` console script."""

from axo.cli.main import main

if __name__ == "__main__":
    main()
