"""simplephone's requirements, less the pjsua2-python wheel, one per line.

For a venv whose pjsua2 is built from source (`make test PJSUA2=source`):
pip cannot be told to skip one dependency, so the package goes in with
`--no-deps` and these go in beside it. Arguments name extras to include.
"""

import sys
import tomllib
from pathlib import Path

WHEEL = "pjsua2-python"


def requirements(extras: list[str]) -> list[str]:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    return [line for line in wanted if not line.startswith(WHEEL)]


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1:])))
