"""hubkit: find kidney glomeruli in whole-slide PAS microscopy TIFFs (HuBMAP "Hacking the Kidney").

Coordinates everywhere are ``(row, col)`` and sizes ``(height, width)``, in full-resolution slide
pixels unless a docstring says otherwise.
"""

__version__ = "0.2.0"
