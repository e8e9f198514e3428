"""prepare: render the image catalog, filter by services, build the Heat env."""
