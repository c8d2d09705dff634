"""Tables, plots and image grids."""
