"""``python -m diffusion_infill ...`` runs the ``infill`` command."""

from diffusion_infill.cli import main

raise SystemExit(main())
