"""Install the chunkssl package. Pinned versions live in requirements.txt and constraints.txt."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="chunkssl",
    version="0.1.0",
    description="Chunk-based self-supervised speech pre-training for streaming and offline speech-to-text",
    long_description=(here / "README.md").read_text() if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["chunkssl", "chunkssl.*"]),
    python_requires=">=3.12",
    install_requires=requirements,
    license="Apache-2.0",
)
