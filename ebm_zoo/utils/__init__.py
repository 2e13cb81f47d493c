"""Small helpers shared by every module: input checks, image grids."""
