"""The exceptions hubkit raises. Each message names the file or item and the problem."""


class HubkitError(Exception):
    """Base of every hubkit error."""


class SlideError(HubkitError):
    """A slide that cannot be opened or read: corrupt, truncated, unsupported layout, bad window."""


class AnnotationError(HubkitError, ValueError):
    """An annotation file that cannot be read or rasterised."""
