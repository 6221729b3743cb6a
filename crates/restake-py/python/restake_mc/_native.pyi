"""Type stubs of the extension module ``restake_mc._native`` (``src/lib.rs``).

Use the package ``restake_mc`` rather than this module: its functions take scenarios
in every form and return DataFrames.
"""

from collections.abc import Callable
from typing import Any, Literal

__version__: str

ScenarioKind = Literal["default", "path", "text", "dict"]
JobKind = Literal["run", "batch", "sweep", "stress"]

class Job:
    """A simulated job: its members' results and the files of its output folder."""

    @property
    def kind(self) -> JobKind: ...
    @property
    def folders(self) -> list[str | None]:
        """Each member's folder in the output folder ("" for a run; None for a sweep's
        points)."""
    @property
    def labels(self) -> list[str]:
        """Each member's name in messages."""
    @property
    def coupled(self) -> bool:
        """Whether a sweep's points are coupled path by path."""
    @property
    def warnings(self) -> list[str]:
        """The warnings the command line prints."""
    def files(self) -> list[tuple[str, bytes]]:
        """The output folder's files as (name, bytes), plain CSVs."""
    def write(self, folder: str, excel: bool = False, xlsx: bool = False) -> list[str]:
        """Writes the output folder, replacing it whole; returns the paths written.

        Raises ValueError for a folder that cannot be an output folder, OSError when a
        file cannot be written."""

def simulate(
    kind: JobKind,
    scenarios: list[tuple[ScenarioKind, Any]],
    sets: list[str],
    paths: int | None = None,
    seed: int | None = None,
    threads: int = 0,
    progress: Callable[[int, int], object] | None = None,
) -> Job:
    """Builds, checks and simulates a job with the GIL released.

    Raises ValueError with the command line's message for bad input."""

def paths(
    scenario: tuple[ScenarioKind, Any],
    paths: int | None = None,
    seed: int | None = None,
    threads: int = 0,
    progress: Callable[[int, int], object] | None = None,
) -> list[tuple[str, Literal["<u8", "<u4", "<f8"], bytes]]:
    """Every path of a run as (name, numpy dtype, little-endian bytes) columns.

    Raises ValueError for bad input or a table past 4 GB."""

def presets() -> list[str]:
    """The bundled presets' names."""
