"""The copy engine: plan many images, move each unique blob once."""
