"""diffusion-infill's command line, ``infill`` (also ``python -m diffusion_infill``).

The libraries are ``infill`` (spans, context, post-processing; no torch), ``model`` (the denoiser,
its worker and training) and ``lsp_server``; this package only parses commands and hands them on.
"""

# The version when the distribution's metadata cannot be read (a source tree that is not installed);
# keep it equal to pyproject.toml's [project] version (tests/cli checks).
__version__ = "0.1.0"
