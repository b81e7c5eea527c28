"""``python -m pix2pix_lit.report``'s logic: read job folders, write a table and a figure."""
